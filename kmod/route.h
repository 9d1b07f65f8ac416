/* SPDX-License-Identifier: GPL-2.0 */
/*
 * SEND: finding the receivers of a message and handing it to them.
 */
#ifndef KD_ROUTE_H
#define KD_ROUTE_H

#include "kd.h"

int kd_cmd_send(struct kd_conn *conn, void __user *argp);

/*
 * Delivers a kernel notification built by kd_msg_kernel(): a broadcast
 * (dst_id ~0) to every connection whose match rules want it (NAME_*: and
 * that may see the name), a unicast (REPLY_*) to its destination; monitors
 * get a copy. Failures only bump the receiver's lost counter. Called by
 * kd_notify_flush() with no lock held; @m stays the caller's.
 */
void kd_route_kernel(struct kd_bus *bus, struct kd_msg *m);

#endif /* KD_ROUTE_H */
