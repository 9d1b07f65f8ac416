/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Reply slots: a method call waiting for its answer. A slot links a
 * caller and the connection that owes the reply (its callee); it ends
 * when the reply is delivered, the deadline passes, or the callee goes
 * away. Synchronous callers sleep on their slot. bus->reply_lock guards
 * every slot's links and state.
 */
#ifndef KD_REPLY_H
#define KD_REPLY_H

#include <linux/kref.h>
#include <linux/wait.h>

#include "kd.h"

struct kd_reply {
	struct kref kref;
	struct list_head call_node;	/* caller->calls */
	struct list_head owed_node;	/* callee->owed */
	struct kd_conn *caller;		/* references */
	struct kd_conn *callee;
	u64 cookie;
	u64 deadline;			/* CLOCK_MONOTONIC ns */
	bool linked;			/* on caller->calls: counted in n_calls */

	/* synchronous calls */
	bool sync;
	bool waiting;			/* a SEND sleeps on it now */
	bool done;			/* @err, @offset and @size are final */
	int err;
	u64 offset;
	u64 size;
	wait_queue_head_t wait;

	/*
	 * A synchronous reply's descriptors (route.c): set by the replier
	 * before kd_reply_finish(), taken by the caller once kd_reply_wait()
	 * returned 0. If still set when the slot is released (a parked
	 * waiter whose connection went away), kd_reply_release() must hand
	 * it to kd_sync_files_free() (msg.h).
	 */
	struct kd_sync_files *files;
};

/*
 * References: the caller's list holds one while the slot is linked; every
 * function that returns a slot (new, take, resume, get) hands out one more
 * that its user drops with kd_reply_put(). A slot "ends" once (@done):
 * answered, expired, cancelled, dead or its caller gone. A later
 * kd_reply_finish() or kd_reply_dead() on an ended slot does nothing.
 *
 * Context: every function here takes only bus->reply_lock (a leaf) and may
 * be called under the registry rwsem, bus->lock or conn locks, never under
 * a spinlock. kd_reply_dead() (and kd_reply_retarget() of a slot whose new
 * callee is gone) records a REPLY_DEAD notification: whoever calls them
 * runs kd_notify_flush() once its locks are dropped. kd_reply_wait() and
 * kd_reply_conn_shutdown() sleep and must be called with no lock held and
 * without the caller's active count (a disconnect waits for that count,
 * and shutdown waits for the timeout work, which takes bus locks).
 */

/*
 * A slot on @caller->calls and @callee->owed; ERR_PTR(-EMLINK) if @caller
 * has KD_PENDING_MAX outstanding, -ECONNRESET if either side was shut down.
 * @deadline is absolute CLOCK_MONOTONIC ns; async slots are expired by the
 * caller's timeout work (REPLY_TIMEOUT), sync ones by their waiter.
 */
struct kd_reply *kd_reply_new(struct kd_conn *caller, struct kd_conn *callee,
			      u64 cookie, u64 deadline, bool sync);
void kd_reply_put(struct kd_reply *r);
struct kd_reply *kd_reply_get(struct kd_reply *r);

/*
 * takes the slot of @caller's call @cookie that @callee owes; NULL if none
 * (the reply fails with EBADSLT). The slot is no longer owed; it stays
 * on the caller's list until kd_reply_finish() (reply delivered) or
 * kd_reply_restore() (reply could not be delivered). A sync slot whose
 * waiter was interrupted is taken too: its result waits for the restart.
 */
struct kd_reply *kd_reply_take(struct kd_conn *callee, struct kd_conn *caller,
			       u64 cookie);
/*
 * the reply to a taken slot could not be delivered: the slot is owed
 * again and keeps its deadline (deviation 10: the caller gets a timeout)
 */
void kd_reply_restore(struct kd_reply *r);
/* a queued call moved to another connection: so does the debt */
void kd_reply_retarget(struct kd_reply *r, struct kd_conn *callee);
/*
 * ends a slot: sync callers get @err (0: the reply at @offset/@size of the
 * caller's pool), async ones nothing more (the reply, if any, is queued;
 * an error cancels the slot silently). Returns 0, or -ECONNRESET if the
 * slot had ended already (a sync waiter left): the caller then undoes what
 * it wrote for it. Was void; callers may ignore the result.
 */
int kd_reply_finish(struct kd_reply *r, int err, u64 offset, u64 size);
/* the callee will never answer: REPLY_DEAD or EPIPE */
void kd_reply_dead(struct kd_reply *r);

/*
 * sleeps until the sync slot @r ends: its result (0 with @r->offset/size,
 * or the error it ended with: EPIPE, ECONNRESET, EREMOTEIO...), -ETIMEDOUT,
 * -ECANCELED (@cancel, if not NULL, polls readable) or -ERESTARTSYS (a
 * signal: the slot stays for kd_reply_resume()). Except for -ERESTARTSYS
 * the slot has ended when it returns. Drops no reference.
 */
int kd_reply_wait(struct kd_reply *r, struct file *cancel);
/*
 * a sync call restarted after a signal: its slot, if still waiting (a
 * reference; the slot counts as waited on again, kd_reply_wait() next).
 * NULL: no such slot, send the call anew. Looked up by cookie only.
 */
struct kd_reply *kd_reply_resume(struct kd_conn *caller, u64 cookie);

/* CLOCK_MONOTONIC has reached @deadline (the hardware is read only near it) */
bool kd_reply_deadline_passed(u64 deadline);

void kd_reply_conn_init(struct kd_conn *conn);
/*
 * disconnect: answer every slot @conn owes (EPIPE/REPLY_DEAD), drop the
 * ones it waits on (sync waiters get ECONNRESET), stop its timeout work
 * and flush the notifications. No lock held; sleeps. Afterwards
 * kd_reply_new() refuses @conn on either side.
 */
void kd_reply_conn_shutdown(struct kd_conn *conn);

#endif /* KD_REPLY_H */
