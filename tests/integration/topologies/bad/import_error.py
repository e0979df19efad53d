raise ImportError("no module named 'left_pad' (raised by the user's file)")
