/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Match rules: which broadcasts, unicast signals and kernel notifications
 * a connection wants.
 */
#ifndef KD_MATCH_H
#define KD_MATCH_H

#include "kd.h"

struct kd_matchdb *kd_matchdb_new(void);
void kd_matchdb_free(struct kd_matchdb *db);

/*
 * Does @dst want @m? For user messages the caller holds
 * bus->names.lock (NAME rules look at the sender's names).
 */
bool kd_match(struct kd_conn *dst, const struct kd_msg *m);

int kd_cmd_match_add(struct kd_conn *conn, void __user *argp);
int kd_cmd_match_remove(struct kd_conn *conn, void __user *argp);

#endif /* KD_MATCH_H */
