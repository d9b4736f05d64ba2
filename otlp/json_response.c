/*
 * json_response.c - the JSON bodies the OTLP/HTTP receiver answers a JSON request with: the
 * export response (partial success) and the google.rpc.Status of a refusal.
 *
 * Apart from the transcoder: these are written, never read, and every string in them (an
 * error message may quote the sender's data) goes through the one JSON escaper of lib/.
 */
#include "otlp/json.h"

#include <stdbool.h>
#include <string.h>

#include "lib/escape.h"

static bool put_json_string(struct buf *out, const char *s)
{
    return esc_json_quoted(out, s, strlen(s));
}

static int partial_success(struct buf *out, const char *count_key, uint64_t rejected, const char *message)
{
    if (rejected == 0 && message[0] == 0)
        return buf_append(out, "{}", 2) ? 0 : -1;
    return buf_printf(out, "{\"partialSuccess\":{\"%s\":\"%llu\",\"errorMessage\":", count_key,
                      (unsigned long long)rejected) &&
           put_json_string(out, message) && buf_append(out, "}}", 2) ? 0 : -1;
}

int otlp_json_profiles_response(const struct otlp_result *res, struct buf *out)
{
    bool partial = res->rejected_profiles || res->rejected_samples || res->rejected_whole;
    return partial_success(out, "rejectedProfiles", res->rejected_profiles, partial ? res->message : "");
}

int otlp_json_traces_response(const struct otlp_trace_result *res, struct buf *out)
{
    return partial_success(out, "rejectedSpans", res->rejected_spans,
                           res->rejected_spans ? res->message : "");
}

int otlp_json_status(int code, const char *message, struct buf *out)
{
    return buf_printf(out, "{\"code\":%d,\"message\":", code) && put_json_string(out, message) &&
           buf_putc(out, '}') ? 0 : -1;
}
