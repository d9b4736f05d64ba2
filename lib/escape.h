/*
 * escape.h - making bytes from the wire safe to print.
 *
 * Every string a sink prints (attribute keys and values, function and file names, mapping
 * names, build ids) comes from whoever sent the request. Users tail the stdout sink in a
 * terminal, so a string must never reach it raw: an ESC or a C1 CSI would let a sender move
 * the cursor, recolour or retitle the terminal, hide lines; a newline would let it forge whole
 * lines of output; bidi overrides would make a name read differently than it is. The escaper
 * is also what keeps one record on one line (folded stacks) and what makes the output valid
 * UTF-8 whatever was sent.
 *
 * Text form (esc_text), for human-readable output:
 *   - printable ASCII passes, except backslash which becomes `\\` (so the escape is reversible);
 *   - \n \t \r become `\n` `\t` `\r`; other bytes < 0x20 and 0x7f become `\xNN` (lowercase);
 *   - valid UTF-8 passes, except the dangerous code points, which become `\u{XXXX}` (4 lowercase
 *     hex digits): C1 controls U+0080-U+009F, U+2028, U+2029 and the bidi controls U+061C,
 *     U+200E, U+200F, U+202A-U+202E, U+2066-U+2069;
 *   - each byte that is not part of a valid UTF-8 sequence (bad lead byte, truncated sequence,
 *     overlong form, surrogate, above U+10FFFF) becomes `\xNN`.
 *
 * JSON form (esc_json), for JSON strings: `"` and `\` are backslash-escaped, bytes < 0x20, 0x7f
 * and the same dangerous code points become `\u00xx` / `\uxxxx`, each invalid UTF-8 byte
 * becomes `\ufffd`. The output is always valid UTF-8 and valid inside a JSON string.
 */
#ifndef LB_LIB_ESCAPE_H
#define LB_LIB_ESCAPE_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/buf.h"

/* Appends the text-escaped form of p[0..n). False when the buffer refused to grow (what was
 * appended so far stays). */
bool esc_text(struct buf *b, const void *p, size_t n);

/* Appends p[0..n) as the inside of a JSON string (no quotes). */
bool esc_json(struct buf *b, const void *p, size_t n);

/* The same, with the surrounding quotes. */
bool esc_json_quoted(struct buf *b, const void *p, size_t n);

#endif
