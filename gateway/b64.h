/*
 * b64.h — standard base64 (RFC 4648, '+' '/', '=' padding), as etcd's JSON
 * gateway reads and writes protobuf `bytes` fields.
 *
 * Decoding follows Go's base64.StdEncoding.Decode exactly (what grpc-gateway
 * v1 uses through encoding/json), because etcd's error text names the byte
 * offset Go reports ("illegal base64 data at input byte N"):
 *   - padding is required ("Zm9" fails at byte 0: the start of the short
 *     quantum), URL-safe characters fail, spaces fail;
 *   - '\r' and '\n' are skipped anywhere;
 *   - non-zero trailing bits are accepted (Go's non-strict mode).
 * Pure functions: buffers in, results out.
 */
#ifndef KVGATE_B64_H
#define KVGATE_B64_H

#include <stddef.h>
#include <stdint.h>

/* Length of the padded encoding of n bytes (without a terminating NUL). */
static inline size_t b64_encoded_len(size_t n) { return (n + 2) / 3 * 4; }

/* Upper bound of the decoded length of an n-character input. */
static inline size_t b64_decoded_max(size_t n) { return n / 4 * 3 + 3; }

/* Writes b64_encoded_len(n) characters to out (no NUL). */
void b64_encode(const uint8_t *in, size_t n, char *out);

/* Decodes in[0..n) into out (room for b64_decoded_max(n) bytes).
 * Returns 0 and sets *out_len, or -1 and sets *bad_pos to the input offset
 * Go would report. */
int b64_decode(const char *in, size_t n, uint8_t *out, size_t *out_len, size_t *bad_pos);

#endif
