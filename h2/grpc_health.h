/*
 * grpc_health.h - the standard gRPC health checking service, grpc.health.v1.Health, on the
 * gRPC port: what load balancers, Kubernetes' gRPC probes and grpc_health_probe ask.
 *
 *   Check(HealthCheckRequest{string service = 1}) -> HealthCheckResponse{ServingStatus status = 1}
 *
 * SERVING while the application says it is healthy, NOT_SERVING while it says why not (the
 * same answer as GET /healthz on the HTTP port: shutting down, a sink that cannot take
 * requests). "" names the server as a whole; another name must be one the port serves, else
 * the call fails with NOT_FOUND, as the health checking protocol asks. Watch, a server
 * stream, is not offered: this port serves unary calls only, so Watch is answered
 * UNIMPLEMENTED like any method the port does not have (clients then poll Check).
 *
 * Why in h2/ and by hand: it is part of speaking gRPC, not of OTLP, and its two messages have
 * one field each; reading one field (skipping any other, as protobuf requires) and writing one
 * varint needs no schema compiler.
 */
#ifndef LB_H2_GRPC_HEALTH_H
#define LB_H2_GRPC_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "h2/server.h"

#define GRPC_HEALTH_CHECK_PATH "/grpc.health.v1.Health/Check"

/* HealthCheckResponse.ServingStatus */
enum grpc_serving_status {
    GRPC_HEALTH_UNKNOWN = 0,
    GRPC_HEALTH_SERVING = 1,
    GRPC_HEALTH_NOT_SERVING = 2,
    GRPC_HEALTH_SERVICE_UNKNOWN = 3,   /* Watch only; Check answers NOT_FOUND instead */
};

struct grpc_health_service {
    const char *(*unhealthy)(void *ud);   /* NULL while healthy, else why not */
    void *ud;
    const char *const *services;          /* the service names Check knows besides "" */
    size_t n_services;
};

/* Adds Check to a gRPC server; `svc` must outlive it. 0 or -1. */
int grpc_health_register(struct h2_server *s, const struct grpc_health_service *svc);

/* HealthCheckRequest's service field (empty when absent; the last one when repeated), as a
 * pointer into `msg`. False when msg is not a protobuf message. For the unit tests too. */
bool grpc_health_read_request(const uint8_t *msg, size_t len, const char **service, size_t *service_len);

#endif
