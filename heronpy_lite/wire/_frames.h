/*
 * The frame header (see frames.py) for the C modules: a u32 big-endian length
 * (everything after it), a kind byte, and for DATA and ACK frames the
 * destination task, source task, tuple count and stream name length.
 * Header-only: included by instance/_cpath.c.
 */

#ifndef HERONPY_LITE_FRAMES_H
#define HERONPY_LITE_FRAMES_H

#include <stdint.h>
#include <string.h>

#define FRAME_KIND_DATA 1
#define FRAME_KIND_ACK 3
/* u32 length, u8 kind, u32 dst, u32 src, u32 tuples, u16 stream length */
#define FRAME_DATA_HEADER 19

static inline void
frame_put_be(unsigned char *p, uint64_t v, int width)
{
    for (int i = 0; i < width; i++)
        p[i] = (unsigned char)(v >> (8 * (width - 1 - i)));
}

/* Write the header of a DATA or ACK frame whose stream name and body take
 * `rest` bytes after the header; the stream name follows at p + 19. */
static inline void
frame_put_header(unsigned char *p, int kind, uint32_t dst, uint32_t src, uint32_t tuples,
                 uint16_t stream_len, Py_ssize_t rest)
{
    frame_put_be(p, (uint64_t)(FRAME_DATA_HEADER - 4 + rest), 4);
    p[4] = (unsigned char)kind;
    frame_put_be(p + 5, dst, 4);
    frame_put_be(p + 9, src, 4);
    frame_put_be(p + 13, tuples, 4);
    frame_put_be(p + 17, stream_len, 2);
}

#endif
