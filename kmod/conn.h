/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A connection: what HELLO turns an endpoint handle into. It owns a
 * receive pool and a queue, holds names, match rules and reply slots, and
 * lives until its handle is closed (memory) or it is disconnected (use).
 */
#ifndef KD_CONN_H
#define KD_CONN_H

#include <linux/kref.h>
#include <linux/mutex.h>
#include <linux/path.h>
#include <linux/poll.h>
#include <linux/wait.h>
#include <linux/workqueue.h>

#include "kd.h"
#include "queue.h"

/*
 * @active counts commands working on the bus with this connection. It is
 * >= 0 while the connection is live; disconnecting adds KD_CONN_DEAD and
 * waits until only that bias is left, so teardown runs after the last
 * command left and no command starts after it. Commands hold it only
 * while they touch bus state, never while they read or write the
 * caller's memory.
 */
#define KD_CONN_DEAD	(INT_MIN / 2)

enum kd_conn_kind {
	KD_CONN_ORDINARY,
	KD_CONN_ACTIVATOR,
	KD_CONN_HOLDER,		/* policy holder */
	KD_CONN_MONITOR,
};

struct kd_conn {
	struct kref kref;
	atomic_t active;
	bool gone;			/* disconnect finished its teardown */
	struct rcu_head rcu;
	u64 id;
	u64 flags;			/* HELLO flags, NEGOTIATE stripped */
	enum kd_conn_kind kind;
	struct kd_bus *bus;		/* a reference */
	struct kd_ep *ep;		/* a reference */
	struct hlist_node bus_node;	/* bus->conns (RCU), bus->lock */
	struct list_head all_node;	/* bus->all_conns, bus->lock */
	struct list_head monitor_node;	/* bus->monitors, bus->lock */
	struct list_head ep_node;	/* ep->conns, ep->lock */

	/* who it is: fixed at HELLO */
	const struct cred *cred;	/* of the file HELLO was called on */
	struct pid_namespace *pid_ns;	/* of the HELLO task: metadata view */
	struct kd_root root;		/* of the HELLO task: EXE visibility */
	struct kd_user *user;		/* quota account of what it sends */
	bool privileged;		/* default ep and CAP_IPC_OWNER */
	bool owner;			/* default ep and (bus uid or privileged) */
	bool faked;			/* HELLO supplied CREDS/PIDS/SECLABEL */
	struct kd_meta *meta;		/* HELLO snapshot (or the faked one) */
	char *description;
	atomic64_t attach_send;		/* KDBUS_ATTACH_* it offers */
	atomic64_t attach_recv;		/* KDBUS_ATTACH_* it wants */

	/*
	 * The receiving side. @lock protects @queue and the quota tables in
	 * it; the pool has its own lock, taken inside this one.
	 */
	struct mutex lock;
	struct kd_pool *pool;
	struct kd_queue queue;
	wait_queue_head_t wait;		/* poll and RECV */
	atomic_t lost;			/* messages dropped since the last RECV */

	/* names: bus->names.lock */
	struct list_head names;		/* struct kd_owner.conn_node */
	unsigned int n_names;
	char *policy_name;		/* activator or holder: its one name */

	struct kd_matchdb *matches;

	/* reply slots: bus->reply_lock */
	struct list_head calls;		/* slots of calls it made */
	struct list_head owed;		/* slots of calls it must answer */
	unsigned int n_calls;		/* outstanding, for KD_PENDING_MAX */
	bool replies_closed;		/* kd_reply_conn_shutdown() ran */
	struct delayed_work timeout_work;
};

int kd_conn_hello(struct kd_ep *ep, struct file *file, void __user *argp,
		  struct kd_conn **out);
void kd_conn_close(struct kd_conn *conn);
/*
 * Sleeps: takes bus->names.lock, conn->lock and ep->lock and waits for the
 * active count, so the caller holds none of them and no active count of
 * @conn. A caller that finds @conn already dead (-ECONNRESET) returns only
 * once the other disconnect has finished.
 */
int kd_conn_disconnect(struct kd_conn *conn, bool only_if_idle);

bool kd_conn_enter(struct kd_conn *conn);
void kd_conn_leave(struct kd_conn *conn);
bool kd_conn_live(const struct kd_conn *conn);
struct kd_conn *kd_conn_get(struct kd_conn *conn);
/* the last put releases the pool, the references and may sleep */
void kd_conn_put(struct kd_conn *conn);

static inline bool kd_conn_ordinary(const struct kd_conn *c)
{
	return c->kind == KD_CONN_ORDINARY;
}

/* the user a message from @conn is accounted to in receivers' quotas */
struct kd_user *kd_conn_quota_user(const struct kd_conn *conn);

__poll_t kd_conn_poll(struct kd_conn *conn, struct file *file,
		      struct poll_table_struct *wait);
int kd_conn_mmap(struct kd_conn *conn, struct vm_area_struct *vma);

/* the commands of a connected handle */
int kd_cmd_update(struct kd_conn *conn, void __user *argp);
int kd_cmd_byebye(struct kd_conn *conn, void __user *argp);
int kd_cmd_conn_info(struct kd_conn *conn, void __user *argp);
int kd_cmd_list(struct kd_conn *conn, void __user *argp);

#endif /* KD_CONN_H */
