/* SPDX-License-Identifier: GPL-2.0 */
/*
 * SEND: finding the receivers of a message and handing it to them.
 */
#ifndef KD_ROUTE_H
#define KD_ROUTE_H

#include "kd.h"

int kd_cmd_send(struct kd_conn *conn, void __user *argp);

void kd_route_lost(struct kd_conn *conn);

#endif /* KD_ROUTE_H */
