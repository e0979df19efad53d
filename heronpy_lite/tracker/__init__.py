"""The tracker: an HTTP API over a cluster's topologies, and the web UI it serves
(``heronpy-lite tracker CLUSTER``, ``heronpy-lite ui CLUSTER``)."""
