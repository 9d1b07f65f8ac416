// SPDX-License-Identifier: GPL-2.0
/*
 * Reply slots.
 *
 * A slot is made when a call that expects an answer is sent and ends
 * exactly once (@done): answered, expired, cancelled, or because one side
 * went away. Until it ends it sits on its caller's @calls list, which is
 * what KD_PENDING_MAX counts, and, while nobody is busy answering it, on
 * its callee's @owed list. A synchronous result whose waiter was driven
 * out by a signal ("parked") stays on @calls, ended, until the restarted
 * SEND collects it, so the restart neither resends the call nor loses the
 * answer.
 *
 * bus->reply_lock guards both lists, @n_calls and every slot field that
 * changes. None of our other locks is taken under it, and nothing sleeps
 * under it. The timeout work is (re)armed under it on purpose: arming is
 * then ordered against kd_reply_conn_shutdown(), which cancels the work
 * after it closed the connection under the same lock; only the internal
 * locks of the timer and the workqueue nest there.
 */

#include <linux/jiffies.h>
#include <linux/list.h>
#include <linux/poll.h>
#include <linux/rcupdate.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/timekeeping.h>
#include <linux/workqueue.h>

#include "bus.h"
#include "conn.h"
#include "notify.h"
#include "reply.h"

static spinlock_t *kd_reply_lock(const struct kd_reply *r)
{
	return &r->caller->bus->reply_lock;
}

static void kd_reply_release(struct kref *kref)
{
	struct kd_reply *r = container_of(kref, struct kd_reply, kref);

	kd_conn_put(r->caller);
	kd_conn_put(r->callee);
	kfree(r);
	kd_obj_gone(KD_OBJ_REPLY);
}

/**
 * kd_reply_get() - take a reference on a reply slot
 * @r:		the slot
 *
 * Return: @r.
 */
struct kd_reply *kd_reply_get(struct kd_reply *r)
{
	kref_get(&r->kref);
	return r;
}

/**
 * kd_reply_put() - drop a reference on a reply slot
 * @r:		the slot, or NULL
 *
 * The last reference drops those the slot holds on both connections.
 */
void kd_reply_put(struct kd_reply *r)
{
	if (r)
		kref_put(&r->kref, kd_reply_release);
}

/*
 * Jiffies from now to @deadline, rounded up so that a timer never fires
 * before it, and capped so that "jiffies + delay" stays comparable. Judged
 * by the coarse clock: it reads no hardware, and as it can only lag, the
 * delay can only come out longer. Whoever the timer wakes checks the
 * deadline against the precise clock.
 */
static unsigned long kd_reply_delay(u64 deadline)
{
	u64 now = ktime_get_coarse_ns();

	if (deadline <= now)
		return 0;
	return min_t(u64, nsecs_to_jiffies64(deadline - now) + 1,
		     MAX_JIFFY_OFFSET);
}

/*
 * The coarse clock trails the precise one by about a tick; a deadline
 * further ahead of it than this has not passed, whatever the hardware
 * says. Generous, so that a late tick on a busy virtual machine cannot
 * make it wrong.
 */
#define KD_COARSE_SLACK_NS	NSEC_PER_SEC

/**
 * kd_reply_deadline_passed() - has a call's deadline passed?
 * @deadline:	absolute CLOCK_MONOTONIC time in ns
 *
 * The precise clock decides, but is read only when the coarse one says
 * the deadline is near: on some machines a clock read costs more than
 * the rest of a small call.
 *
 * Return: true if CLOCK_MONOTONIC is at or past @deadline.
 */
bool kd_reply_deadline_passed(u64 deadline)
{
	u64 coarse = ktime_get_coarse_ns();

	if (deadline > coarse && deadline - coarse > KD_COARSE_SLACK_NS)
		return false;
	return deadline <= ktime_get_ns();
}

/* reply_lock held: have @conn's timeout work run by @deadline at latest */
static void kd_reply_arm(struct kd_conn *conn, u64 deadline)
{
	struct delayed_work *dw = &conn->timeout_work;
	unsigned long delay = kd_reply_delay(deadline);

	/* armed early enough, or queued already: the work re-arms itself */
	if (delayed_work_pending(dw) &&
	    time_before_eq(dw->timer.expires, jiffies + delay))
		return;
	mod_delayed_work(system_wq, dw, delay);
}

/*
 * reply_lock held: takes @r off its callee's and its caller's lists.
 * Returns true if it was on the caller's: the reference of that list
 * passes to the caller of this function, to be dropped after unlocking.
 */
static bool kd_reply_unlink(struct kd_reply *r)
{
	list_del_init(&r->owed_node);
	if (!r->linked)
		return false;
	list_del_init(&r->call_node);
	r->linked = false;
	r->caller->n_calls--;
	return true;
}

/*
 * reply_lock held: ends the live slot @r with this outcome. A sync result
 * whose waiter is away stays on the caller's list for kd_reply_resume();
 * otherwise the return value is that of kd_reply_unlink().
 */
static bool kd_reply_settle(struct kd_reply *r, int err, u64 offset,
			    u64 size)
{
	r->done = true;
	r->err = err;
	r->offset = offset;
	r->size = size;
	if (r->sync && !r->waiting) {
		list_del_init(&r->owed_node);
		return false;
	}
	return kd_reply_unlink(r);
}

/* what the timeout work expires: the slots no waiter and no reply watch */
static bool kd_reply_timer_owns(const struct kd_reply *r)
{
	if (r->done)
		return false;
	if (r->sync)
		return !r->waiting;
	return !list_empty(&r->owed_node);
}

static void kd_reply_timeout(struct work_struct *work)
{
	struct kd_conn *conn = container_of(to_delayed_work(work),
					    struct kd_conn, timeout_work);
	struct kd_bus *bus = conn->bus;
	struct kd_reply *r, *tmp;
	u64 now = ktime_get_ns();
	u64 next = U64_MAX;
	LIST_HEAD(expired);

	spin_lock(&bus->reply_lock);
	list_for_each_entry_safe(r, tmp, &conn->calls, call_node) {
		if (!kd_reply_timer_owns(r))
			continue;
		if (r->deadline > now) {
			next = min(next, r->deadline);
			continue;
		}
		r->done = true;
		r->err = -ETIMEDOUT;
		if (kd_reply_unlink(r))
			list_add_tail(&r->call_node, &expired);
	}
	if (next != U64_MAX)
		kd_reply_arm(conn, next);
	spin_unlock(&bus->reply_lock);

	list_for_each_entry_safe(r, tmp, &expired, call_node) {
		list_del_init(&r->call_node);
		/* a sync caller that left learns of it when it comes back */
		if (!r->sync)
			kd_notify_reply(bus, KDBUS_ITEM_REPLY_TIMEOUT, conn->id,
					r->cookie);
		kd_reply_put(r);
	}
	kd_notify_flush(bus);
}

/**
 * kd_reply_conn_init() - prepare the reply state of a new connection
 * @conn:	the connection, not yet visible to anybody
 */
void kd_reply_conn_init(struct kd_conn *conn)
{
	INIT_LIST_HEAD(&conn->calls);
	INIT_LIST_HEAD(&conn->owed);
	conn->n_calls = 0;
	conn->replies_closed = false;
	INIT_DELAYED_WORK(&conn->timeout_work, kd_reply_timeout);
}

/**
 * kd_reply_new() - open a reply slot for a call
 * @caller:	the connection sending the call
 * @callee:	the connection that will owe the reply
 * @cookie:	the cookie of the call
 * @deadline:	absolute CLOCK_MONOTONIC time in ns
 * @sync:	the caller will sleep on the slot in kd_reply_wait()
 *
 * Context: takes reply_lock; may sleep (allocation).
 * Return: the slot with a reference for the caller, ERR_PTR(-EMLINK) when
 * @caller has KD_PENDING_MAX calls outstanding, ERR_PTR(-ECONNRESET) when
 * either side was shut down, or ERR_PTR(-ENOMEM).
 */
struct kd_reply *kd_reply_new(struct kd_conn *caller, struct kd_conn *callee,
			      u64 cookie, u64 deadline, bool sync)
{
	struct kd_reply *r;
	int err = 0;

	/* bounded by KD_PENDING_MAX per caller: not charged (deviation 18) */
	r = kzalloc(sizeof(*r), GFP_KERNEL);
	if (!r)
		return ERR_PTR(-ENOMEM);
	kd_obj_new(KD_OBJ_REPLY);
	kref_init(&r->kref);
	INIT_LIST_HEAD(&r->call_node);
	INIT_LIST_HEAD(&r->owed_node);
	init_waitqueue_head(&r->wait);
	r->caller = kd_conn_get(caller);
	r->callee = kd_conn_get(callee);
	r->cookie = cookie;
	r->deadline = deadline;
	r->sync = sync;
	r->waiting = sync;

	spin_lock(kd_reply_lock(r));
	if (caller->replies_closed || callee->replies_closed) {
		err = -ECONNRESET;
	} else if (caller->n_calls >= KD_PENDING_MAX) {
		err = -EMLINK;
	} else {
		kref_get(&r->kref);
		list_add_tail(&r->call_node, &caller->calls);
		list_add_tail(&r->owed_node, &callee->owed);
		r->linked = true;
		caller->n_calls++;
		if (!sync)
			kd_reply_arm(caller, deadline);
	}
	spin_unlock(kd_reply_lock(r));

	if (err) {
		kd_reply_put(r);
		return ERR_PTR(err);
	}
	return r;
}

/**
 * kd_reply_take() - claim the slot a reply answers
 * @callee:	the connection sending the reply
 * @caller:	the destination of the reply
 * @cookie:	the reply's cookie_reply
 *
 * The slot stops being owed, so no second reply and no disconnect of
 * @callee can claim it; it stays counted on @caller until
 * kd_reply_finish() or kd_reply_restore(). A sync slot whose waiter was
 * interrupted is claimed as well: its result waits for the restart.
 *
 * Context: takes reply_lock.
 * Return: the slot with a reference, or NULL if @callee owes @caller no
 * call @cookie.
 */
struct kd_reply *kd_reply_take(struct kd_conn *callee, struct kd_conn *caller,
			       u64 cookie)
{
	struct kd_reply *r, *found = NULL;

	/* the caller's list is bounded by KD_PENDING_MAX, the owed one not */
	spin_lock(&caller->bus->reply_lock);
	list_for_each_entry(r, &caller->calls, call_node) {
		if (r->cookie != cookie || r->callee != callee ||
		    list_empty(&r->owed_node))
			continue;
		list_del_init(&r->owed_node);
		found = kd_reply_get(r);
		break;
	}
	spin_unlock(&caller->bus->reply_lock);
	return found;
}

/**
 * kd_reply_restore() - give back a slot whose reply was not delivered
 * @r:		a slot returned by kd_reply_take()
 *
 * The slot is owed again and keeps its deadline, so an asynchronous caller
 * gets REPLY_TIMEOUT rather than waiting forever (deviation 10). Nothing
 * happens if the slot ended meanwhile.
 *
 * Context: takes reply_lock.
 */
void kd_reply_restore(struct kd_reply *r)
{
	spin_lock(kd_reply_lock(r));
	if (!r->done && r->linked && list_empty(&r->owed_node)) {
		list_add_tail(&r->owed_node, &r->callee->owed);
		/* the timer skipped it while the reply was on its way */
		if (!r->sync)
			kd_reply_arm(r->caller, r->deadline);
	}
	spin_unlock(kd_reply_lock(r));
}

/**
 * kd_reply_retarget() - move a slot to the connection its call moved to
 * @r:		the slot of a queued call
 * @callee:	the connection that owes the reply now
 *
 * Used when queued calls move between an activator and the name's new
 * owner (deviation 8). If @callee was shut down already, the call is dead
 * and the caller told so as by kd_reply_dead().
 *
 * Context: takes reply_lock; may be called under the registry lock and
 * conn locks. May record a notification the caller must flush.
 */
void kd_reply_retarget(struct kd_reply *r, struct kd_conn *callee)
{
	struct kd_conn *old = NULL;
	bool dead = false;

	spin_lock(kd_reply_lock(r));
	if (!r->done && r->callee != callee) {
		old = r->callee;
		r->callee = kd_conn_get(callee);
		if (!list_empty(&r->owed_node))
			list_move_tail(&r->owed_node, &callee->owed);
		dead = callee->replies_closed;
	}
	spin_unlock(kd_reply_lock(r));

	if (old)
		kd_conn_put(old);
	if (dead)
		kd_reply_dead(r);
}

/**
 * kd_reply_finish() - record the outcome of a call
 * @r:		the slot
 * @err:	0 if the reply was delivered, else why the call failed
 * @offset:	sync calls: offset of the reply in the caller's pool
 * @size:	sync calls: size of the reply
 *
 * A synchronous caller gets @err, or the reply at @offset; it is woken,
 * or finds the result when its interrupted SEND is restarted. For an
 * asynchronous call the reply was queued already (@err 0), or the call
 * is cancelled without notice. The first outcome of a slot is final
 * (deviation 9).
 *
 * Context: takes reply_lock.
 * Return: 0, or -ECONNRESET if the slot had ended already (a synchronous
 * waiter gave up first): whatever was written for it is unwanted.
 */
int kd_reply_finish(struct kd_reply *r, int err, u64 offset, u64 size)
{
	bool unlinked;

	spin_lock(kd_reply_lock(r));
	if (r->done) {
		spin_unlock(kd_reply_lock(r));
		return -ECONNRESET;
	}
	unlinked = kd_reply_settle(r, err, offset, size);
	spin_unlock(kd_reply_lock(r));

	if (r->sync)
		wake_up(&r->wait);
	if (unlinked)
		kd_reply_put(r);
	return 0;
}

/**
 * kd_reply_dead() - the callee will never answer a call
 * @r:		the slot, referenced by the caller of this function
 *
 * A synchronous caller gets -EPIPE; an asynchronous one a REPLY_DEAD
 * notification. Nothing happens if the slot ended already, so the paths
 * that may all see a dying call (DROP, queue flush, disconnect) can each
 * report it.
 *
 * Context: takes reply_lock; may sleep (records a notification). May be
 * called under the registry lock and conn locks; the caller runs
 * kd_notify_flush() once it holds no lock.
 */
void kd_reply_dead(struct kd_reply *r)
{
	struct kd_bus *bus = r->caller->bus;
	bool unlinked;

	spin_lock(&bus->reply_lock);
	if (r->done) {
		spin_unlock(&bus->reply_lock);
		return;
	}
	unlinked = kd_reply_settle(r, -EPIPE, 0, 0);
	spin_unlock(&bus->reply_lock);

	if (r->sync)
		wake_up(&r->wait);
	else
		kd_notify_reply(bus, KDBUS_ITEM_REPLY_DEAD, r->caller->id,
				r->cookie);
	if (unlinked)
		kd_reply_put(r);
}

/**
 * kd_reply_resume() - find the slot of a restarted synchronous call
 * @caller:	the connection sending the call again
 * @cookie:	the cookie of the call
 *
 * Context: takes reply_lock.
 * Return: the slot, with a reference and marked as waited on, if a
 * synchronous call @cookie of @caller lost its waiter to a signal; NULL
 * otherwise.
 */
struct kd_reply *kd_reply_resume(struct kd_conn *caller, u64 cookie)
{
	struct kd_reply *r, *found = NULL;

	spin_lock(&caller->bus->reply_lock);
	list_for_each_entry(r, &caller->calls, call_node) {
		if (!r->sync || r->waiting || r->cookie != cookie)
			continue;
		r->waiting = true;
		found = kd_reply_get(r);
		break;
	}
	spin_unlock(&caller->bus->reply_lock);
	return found;
}

/*
 * Watching a CANCEL_FD: our own poll table hooks an entry on each wait
 * queue the file's poll registers, and a wake-up that may mean "readable"
 * wakes the sleeping caller, which then asks the file again. Pipes use
 * one queue per direction; no pollable file we know uses more than two.
 */
#define KD_CANCEL_HOOKS	4

struct kd_cancel {
	poll_table pt;
	struct task_struct *task;
	bool fired;
	unsigned int n;
	struct kd_cancel_hook {
		wait_queue_entry_t entry;
		wait_queue_head_t *head;	/* NULL once torn down */
	} hooks[KD_CANCEL_HOOKS];
};

static int kd_cancel_wake(wait_queue_entry_t *entry, unsigned int mode,
			  int sync, void *key)
{
	struct kd_cancel_hook *h = container_of(entry, struct kd_cancel_hook,
						entry);
	struct kd_cancel *c = entry->private;
	__poll_t mask = key_to_poll(key);

	if (mask && !(mask & (EPOLLIN | POLLFREE)))
		return 0;
	WRITE_ONCE(c->fired, true);
	wake_up_process(c->task);
	if (mask & POLLFREE) {
		/* the queue goes away: unhook; @c may vanish after the store */
		list_del_init(&entry->entry);
		/* pairs with the acquire in the unhook path */
		smp_store_release(&h->head, NULL);
	}
	return 0;
}

static void kd_cancel_hook(struct file *file, wait_queue_head_t *head,
			   poll_table *pt)
{
	struct kd_cancel *c = container_of(pt, struct kd_cancel, pt);
	struct kd_cancel_hook *h;

	if (c->n >= ARRAY_SIZE(c->hooks))
		return;
	h = &c->hooks[c->n++];
	init_waitqueue_func_entry(&h->entry, kd_cancel_wake);
	h->entry.private = c;
	h->head = head;
	add_wait_queue(head, &h->entry);
}

/* hooks @c on @file; returns the file's current poll mask */
static __poll_t kd_cancel_start(struct kd_cancel *c, struct file *file)
{
	c->task = current;
	c->fired = false;
	c->n = 0;
	init_poll_funcptr(&c->pt, kd_cancel_hook);
	return vfs_poll(file, &c->pt);
}

static void kd_cancel_stop(struct kd_cancel *c)
{
	wait_queue_head_t *head;
	unsigned int i;

	/* a queue torn down by POLLFREE is freed only after a grace period */
	rcu_read_lock();
	for (i = 0; i < c->n; i++) {
		/* pairs with the POLLFREE release: NULL means already gone */
		head = smp_load_acquire(&c->hooks[i].head);
		if (head)
			remove_wait_queue(head, &c->hooks[i].entry);
	}
	rcu_read_unlock();
}

/* did the cancel fd become readable since we last asked? */
static bool kd_cancel_fired(struct kd_cancel *c, struct file *file)
{
	if (!READ_ONCE(c->fired))
		return false;
	WRITE_ONCE(c->fired, false);
	return vfs_poll(file, NULL) & EPOLLIN;
}

/*
 * The waiter leaves @r for @why (0: it ended). A signal parks the slot for
 * kd_reply_resume(), with the timer watching its deadline meanwhile;
 * anything else ends it, and its outcome, if it had one by now, wins.
 */
static int kd_reply_leave(struct kd_reply *r, int why)
{
	bool unlinked;
	int ret;

	spin_lock(kd_reply_lock(r));
	if (!r->done && why == -ERESTARTSYS) {
		r->waiting = false;
		kd_reply_arm(r->caller, r->deadline);
		spin_unlock(kd_reply_lock(r));
		return why;
	}
	if (!r->done) {
		r->done = true;
		r->err = why;
	}
	r->waiting = false;
	unlinked = kd_reply_unlink(r);
	ret = r->err;
	spin_unlock(kd_reply_lock(r));

	if (unlinked)
		kd_reply_put(r);
	return ret;
}

/*
 * Sleeps until woken or about @deadline; true if it has passed. A tick
 * timer, not an hrtimer: a call is answered long before its deadline, and
 * arming and cancelling an hrtimer on every call reads the clock hardware.
 */
static bool kd_reply_sleep(u64 deadline)
{
	long left = kd_reply_delay(deadline);

	if (left)
		left = schedule_timeout(left);
	return !left && ktime_get_ns() >= deadline;
}

/**
 * kd_reply_wait() - sleep until a synchronous call is answered
 * @r:		the slot, with a reference held by the caller
 * @cancel:	the SEND's CANCEL_FD file, or NULL
 *
 * Ends at the first of: the slot's outcome (the reply, or the error it
 * ended with, e.g. -EPIPE or -ECONNRESET), its deadline (-ETIMEDOUT,
 * without notification), @cancel polling readable (-ECANCELED) or a signal
 * (-ERESTARTSYS; the slot stays for kd_reply_resume()). In all other cases
 * the slot has ended on return.
 *
 * Context: sleeps; no lock held, and not the caller's active count.
 * Return: 0 with @r->offset and @r->size set, or a negative errno.
 */
int kd_reply_wait(struct kd_reply *r, struct file *cancel)
{
	bool polling = cancel && file_can_poll(cancel);
	bool expired = false;
	struct kd_cancel c __uninitialized;
	DEFINE_WAIT(w);
	int ret = 0;

	if (WARN_ON_ONCE(!r->sync))
		return -EINVAL;

	if (polling && (kd_cancel_start(&c, cancel) & EPOLLIN))
		ret = -ECANCELED;

	while (!ret) {
		if (polling && kd_cancel_fired(&c, cancel)) {
			ret = -ECANCELED;
			break;
		}
		prepare_to_wait(&r->wait, &w, TASK_INTERRUPTIBLE);
		if (READ_ONCE(r->done))
			break;
		if (expired) {
			ret = -ETIMEDOUT;
		} else if (signal_pending(current)) {
			ret = -ERESTARTSYS;
		} else if (polling && READ_ONCE(c.fired)) {
			/* poll the file in a running state */
			__set_current_state(TASK_RUNNING);
		} else {
			expired = kd_reply_sleep(r->deadline);
		}
	}
	finish_wait(&r->wait, &w);
	if (polling)
		kd_cancel_stop(&c);

	return kd_reply_leave(r, ret);
}

/**
 * kd_reply_conn_shutdown() - end every slot of a disconnecting connection
 * @conn:	the connection, dead and drained of commands
 *
 * Calls @conn owes are dead (EPIPE or REPLY_DEAD to their callers); calls
 * it made are dropped, their synchronous waiters woken with -ECONNRESET.
 * No slot can be linked to @conn afterwards. The timeout work is stopped
 * and the notifications recorded here are flushed.
 *
 * Context: sleeps; no lock held (the timeout work takes bus locks).
 */
void kd_reply_conn_shutdown(struct kd_conn *conn)
{
	struct kd_bus *bus = conn->bus;
	struct kd_reply *r, *tmp;
	LIST_HEAD(dead);
	LIST_HEAD(dropped);

	spin_lock(&bus->reply_lock);
	conn->replies_closed = true;
	/* every slot still owed is live: ended ones left the list */
	list_for_each_entry_safe(r, tmp, &conn->owed, owed_node) {
		if (kd_reply_settle(r, -EPIPE, 0, 0))
			list_add_tail(&r->call_node, &dead);
	}
	list_for_each_entry_safe(r, tmp, &conn->calls, call_node) {
		if (!r->done) {
			r->done = true;
			r->err = -ECONNRESET;
		}
		kd_reply_unlink(r);
		list_add_tail(&r->call_node, &dropped);
	}
	spin_unlock(&bus->reply_lock);

	list_for_each_entry_safe(r, tmp, &dead, call_node) {
		list_del_init(&r->call_node);
		if (r->sync)
			wake_up(&r->wait);
		else
			kd_notify_reply(bus, KDBUS_ITEM_REPLY_DEAD,
					r->caller->id, r->cookie);
		kd_reply_put(r);
	}
	list_for_each_entry_safe(r, tmp, &dropped, call_node) {
		list_del_init(&r->call_node);
		wake_up(&r->wait);
		kd_reply_put(r);
	}

	cancel_delayed_work_sync(&conn->timeout_work);
	kd_notify_flush(bus);
}
