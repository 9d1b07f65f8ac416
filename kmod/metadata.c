// SPDX-License-Identifier: GPL-2.0
/*
 * Metadata (spec §13).
 *
 * Process metadata (creds, pids, groups, comms, exe, cmdline, cgroup,
 * caps, LSM label, audit) is collected from the current task, lazily and
 * only for the items some receiver needs: at BUS_MAKE (creator), HELLO
 * (connection) and SEND (once per message, from the sending task).
 * Connection metadata (timestamp, owned names, description) is collected
 * from the sending connection. Items are translated per receiver into the
 * namespaces it had at HELLO.
 *
 * Which items a receiver gets on a message: the master rule (implicit items
 * plus the "/proc-visible" items) depended on a per-pid-namespace hidepid
 * setting that no longer exists. This module uses the documented rule
 *	mask = receiver.attach_flags_recv &
 *	       (IMPLICIT | sender.attach_flags_send)
 * IMPLICIT (timestamp, creds, pids, auxgroups, names, description) is
 * always granted when the receiver asks; everything else only when the
 * sender opted in. Kernel notifications carry a timestamp only.
 */

#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/cgroup.h>
#include <linux/cred.h>
#include <linux/file.h>
#include <linux/fs_struct.h>
#include <linux/init.h>
#include <linux/kref.h>
#include <linux/mutex.h>
#include <linux/sched.h>
#include <linux/sched/mm.h>
#include <linux/sched/task.h>
#include <linux/security.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/uidgid.h>
#include <linux/uio.h>
#include <linux/user_namespace.h>

#include "compat.h"
#include "bus.h"
#include "connection.h"
#include "endpoint.h"
#include "item.h"
#include "limits.h"
#include "metadata.h"
#include "names.h"
#include "util.h"

/* number of u32 words per capability set in the CAPS item */
#define KDBUS_CAPS_U32S		2

/**
 * struct kdbus_meta_proc - Process metadata
 * @kref:		Reference counting
 * @collected:		Bitmask of collected items
 * @valid:		Bitmask of collected and valid items
 * @cred:		Credentials (creds, auxgroups, caps)
 * @pid:		PID of process
 * @tgid:		TGID of process
 * @ppid:		PPID of process
 * @tid_comm:		TID comm line
 * @pid_comm:		PID comm line
 * @exe_path:		Executable path
 * @root_path:		Root-FS path
 * @cmdline:		Command-line: the NUL-separated argument vector
 * @cmdline_size:	Size of @cmdline, including the final NUL
 * @cgroup:		Full cgroup path
 * @seclabel:		Seclabel
 * @audit_loginuid:	Audit login-UID
 * @audit_sessionid:	Audit session-ID
 */
struct kdbus_meta_proc {
	struct kref kref;
	u64 collected;
	u64 valid;

	const struct cred *cred;
	struct pid *pid;
	struct pid *tgid;
	struct pid *ppid;
	char tid_comm[TASK_COMM_LEN];
	char pid_comm[TASK_COMM_LEN];
	struct path exe_path;
	struct path root_path;
	char *cmdline;
	size_t cmdline_size;
	char *cgroup;
	char *seclabel;
	kuid_t audit_loginuid;
	unsigned int audit_sessionid;
};

/**
 * struct kdbus_meta_fake - Fake metadata
 * @valid:		Bitmask of collected and valid items
 * @uid:		UID of process
 * @euid:		EUID of process
 * @suid:		SUID of process
 * @fsuid:		FSUID of process
 * @gid:		GID of process
 * @egid:		EGID of process
 * @sgid:		SGID of process
 * @fsgid:		FSGID of process
 * @pid:		PID of process
 * @tgid:		TGID of process
 * @ppid:		PPID of process
 * @seclabel:		Seclabel
 */
struct kdbus_meta_fake {
	u64 valid;

	kuid_t uid, euid, suid, fsuid;
	kgid_t gid, egid, sgid, fsgid;
	struct pid *pid, *tgid, *ppid;
	char *seclabel;
};

/**
 * kdbus_meta_proc_new() - Create process metadata object
 *
 * Return: Pointer to new object on success, ERR_PTR on failure.
 */
struct kdbus_meta_proc *kdbus_meta_proc_new(void)
{
	struct kdbus_meta_proc *mp;

	mp = kzalloc(sizeof(*mp), GFP_KERNEL);
	if (!mp)
		return ERR_PTR(-ENOMEM);

	kref_init(&mp->kref);
	kdbus_obj_inc(KDBUS_OBJ_META_PROC);
	return mp;
}

static void kdbus_meta_proc_free(struct kref *kref)
{
	struct kdbus_meta_proc *mp = container_of(kref, struct kdbus_meta_proc,
						  kref);

	path_put(&mp->exe_path);
	path_put(&mp->root_path);
	if (mp->cred)
		put_cred(mp->cred);
	put_pid(mp->ppid);
	put_pid(mp->tgid);
	put_pid(mp->pid);

	kfree(mp->seclabel);
	kfree(mp->cmdline);
	kfree(mp->cgroup);
	kdbus_obj_dec(KDBUS_OBJ_META_PROC);
	kfree(mp);
}

/**
 * kdbus_meta_proc_ref() - Gain reference
 * @mp:		Process metadata object
 *
 * Return: @mp is returned
 */
struct kdbus_meta_proc *kdbus_meta_proc_ref(struct kdbus_meta_proc *mp)
{
	if (mp)
		kref_get(&mp->kref);
	return mp;
}

/**
 * kdbus_meta_proc_unref() - Drop reference
 * @mp:		Process metadata object
 *
 * Return: NULL
 */
struct kdbus_meta_proc *kdbus_meta_proc_unref(struct kdbus_meta_proc *mp)
{
	if (mp)
		kref_put(&mp->kref, kdbus_meta_proc_free);
	return NULL;
}

static void kdbus_meta_proc_collect_pids(struct kdbus_meta_proc *mp)
{
	struct task_struct *parent;

	mp->pid = get_task_pid(current, PIDTYPE_PID);
	mp->tgid = get_task_pid(current, PIDTYPE_TGID);

	rcu_read_lock();
	parent = rcu_dereference(current->real_parent);
	mp->ppid = get_pid(task_tgid(parent));
	rcu_read_unlock();

	mp->valid |= KDBUS_ATTACH_PIDS;
}

static void kdbus_meta_proc_collect_exe(struct kdbus_meta_proc *mp)
{
	struct file *exe_file;

	if (!current->mm || !current->fs)
		return;

	exe_file = kdbus_get_mm_exe_file(current->mm);
	if (!exe_file)
		return;

	mp->exe_path = exe_file->f_path;
	path_get(&mp->exe_path);
	get_fs_root(current->fs, &mp->root_path);
	mp->valid |= KDBUS_ATTACH_EXE;

	fput(exe_file);
}

static int kdbus_meta_proc_collect_cmdline(struct kdbus_meta_proc *mp)
{
	struct mm_struct *mm = current->mm;
	unsigned long start, end;
	size_t len;
	char *buf;

	if (!mm)
		return 0;

	spin_lock(&mm->arg_lock);
	start = mm->arg_start;
	end = mm->arg_end;
	spin_unlock(&mm->arg_lock);

	if (end <= start)
		return 0;

	/* the whole argument vector, not only argv[0] */
	len = min_t(size_t, end - start, KDBUS_META_CMDLINE_MAX);
	buf = kmalloc(len + 1, GFP_KERNEL);
	if (!buf)
		return -ENOMEM;

	if (copy_from_user(buf, (const void __user *)start, len)) {
		kfree(buf);
		return 0;
	}

	/* always end with a NUL, also when truncated */
	if (buf[len - 1] != '\0')
		buf[len++] = '\0';

	mp->cmdline = buf;
	mp->cmdline_size = len;
	mp->valid |= KDBUS_ATTACH_CMDLINE;
	return 0;
}

static int kdbus_meta_proc_collect_cgroup(struct kdbus_meta_proc *mp)
{
	char *buf;
	int ret;

	buf = (char *)__get_free_page(GFP_KERNEL);
	if (!buf)
		return -ENOMEM;

	/*
	 * The cgroup on the default (unified) hierarchy, as absolute path;
	 * task_cgroup_path() would look at legacy hierarchies only. A path
	 * that does not fit a page is left out.
	 */
	rcu_read_lock();
	ret = cgroup_path(task_dfl_cgroup(current), buf, PAGE_SIZE);
	rcu_read_unlock();

	if (ret >= 0 && ret < PAGE_SIZE) {
		mp->cgroup = kstrdup(buf, GFP_KERNEL);
		if (!mp->cgroup) {
			free_page((unsigned long)buf);
			return -ENOMEM;
		}
		mp->valid |= KDBUS_ATTACH_CGROUP;
	}

	free_page((unsigned long)buf);
	return 0;
}

/**
 * kdbus_meta_proc_collect() - Collect process metadata
 * @mp:		Process metadata object
 * @what:	Attach flags to collect
 *
 * This collects process metadata from current and saves it in @mp. Items
 * that were collected before are not collected again; items the process
 * does not have (no LSM label, no executable, ...) are left out.
 *
 * Return: 0 on success, negative error code on failure.
 */
int kdbus_meta_proc_collect(struct kdbus_meta_proc *mp, u64 what)
{
	int ret = 0;

	if (!mp)
		return 0;

	what &= KDBUS_ATTACH_PROC & ~mp->collected;
	if (!what)
		return 0;

	if (what & (KDBUS_ATTACH_CREDS | KDBUS_ATTACH_AUXGROUPS |
		    KDBUS_ATTACH_CAPS)) {
		if (!mp->cred)
			mp->cred = get_current_cred();
		mp->valid |= what & (KDBUS_ATTACH_CREDS |
				     KDBUS_ATTACH_AUXGROUPS |
				     KDBUS_ATTACH_CAPS);
	}

	if (what & KDBUS_ATTACH_PIDS)
		kdbus_meta_proc_collect_pids(mp);

	if (what & KDBUS_ATTACH_TID_COMM) {
		get_task_comm(mp->tid_comm, current);
		mp->valid |= KDBUS_ATTACH_TID_COMM;
	}

	if (what & KDBUS_ATTACH_PID_COMM) {
		get_task_comm(mp->pid_comm, current->group_leader);
		mp->valid |= KDBUS_ATTACH_PID_COMM;
	}

	if (what & KDBUS_ATTACH_EXE)
		kdbus_meta_proc_collect_exe(mp);

	if (what & KDBUS_ATTACH_CMDLINE) {
		ret = kdbus_meta_proc_collect_cmdline(mp);
		if (ret < 0)
			return ret;
	}

	if (what & KDBUS_ATTACH_CGROUP) {
		ret = kdbus_meta_proc_collect_cgroup(mp);
		if (ret < 0)
			return ret;
	}

	if (what & KDBUS_ATTACH_SECLABEL) {
		mp->seclabel = kdbus_current_seclabel();
		if (mp->seclabel)
			mp->valid |= KDBUS_ATTACH_SECLABEL;
	}

#ifdef CONFIG_AUDITSYSCALL
	if (what & KDBUS_ATTACH_AUDIT) {
		mp->audit_loginuid = audit_get_loginuid(current);
		mp->audit_sessionid = audit_get_sessionid(current);
		mp->valid |= KDBUS_ATTACH_AUDIT;
	}
#endif

	mp->collected |= what;
	return 0;
}

/**
 * kdbus_meta_fake_new() - Create fake metadata object
 *
 * Return: Pointer to new object on success, ERR_PTR on failure.
 */
struct kdbus_meta_fake *kdbus_meta_fake_new(void)
{
	struct kdbus_meta_fake *mf;

	mf = kzalloc(sizeof(*mf), GFP_KERNEL);
	if (!mf)
		return ERR_PTR(-ENOMEM);

	kdbus_obj_inc(KDBUS_OBJ_META_FAKE);
	return mf;
}

/**
 * kdbus_meta_fake_free() - Free fake metadata object
 * @mf:		Fake metadata object
 *
 * Return: NULL
 */
struct kdbus_meta_fake *kdbus_meta_fake_free(struct kdbus_meta_fake *mf)
{
	if (mf) {
		put_pid(mf->ppid);
		put_pid(mf->tgid);
		put_pid(mf->pid);
		kfree(mf->seclabel);
		kdbus_obj_dec(KDBUS_OBJ_META_FAKE);
		kfree(mf);
	}

	return NULL;
}

static kuid_t kdbus_make_kuid(struct user_namespace *ns, u64 id, bool *ok)
{
	kuid_t uid;

	if (id == (u32)-1 || id == (u64)-1)
		return INVALID_UID;

	uid = make_kuid(ns, id);
	if (id > U32_MAX || !uid_valid(uid))
		*ok = false;
	return uid;
}

static kgid_t kdbus_make_kgid(struct user_namespace *ns, u64 id, bool *ok)
{
	kgid_t gid;

	if (id == (u32)-1 || id == (u64)-1)
		return INVALID_GID;

	gid = make_kgid(ns, id);
	if (id > U32_MAX || !gid_valid(gid))
		*ok = false;
	return gid;
}

/**
 * kdbus_meta_fake_collect() - Fill fake metadata from faked credentials
 * @mf:		Fake metadata object
 * @creds:	Creds to set, may be %NULL
 * @pids:	PIDs to set, may be %NULL
 * @seclabel:	Seclabel to set, may be %NULL
 *
 * This function takes information stored in @creds, @pids and @seclabel and
 * resolves them to kernel-representations, if possible. This call uses the
 * current task's namespaces to resolve the given information.
 *
 * Return: 0 on success, negative error number otherwise.
 */
int kdbus_meta_fake_collect(struct kdbus_meta_fake *mf,
			    const struct kdbus_creds *creds,
			    const struct kdbus_pids *pids,
			    const char *seclabel)
{
	if (creds) {
		struct user_namespace *ns = current_user_ns();
		bool ok = true;

		mf->uid		= kdbus_make_kuid(ns, creds->uid, &ok);
		mf->euid	= kdbus_make_kuid(ns, creds->euid, &ok);
		mf->suid	= kdbus_make_kuid(ns, creds->suid, &ok);
		mf->fsuid	= kdbus_make_kuid(ns, creds->fsuid, &ok);

		mf->gid		= kdbus_make_kgid(ns, creds->gid, &ok);
		mf->egid	= kdbus_make_kgid(ns, creds->egid, &ok);
		mf->sgid	= kdbus_make_kgid(ns, creds->sgid, &ok);
		mf->fsgid	= kdbus_make_kgid(ns, creds->fsgid, &ok);

		if (!ok)
			return -EINVAL;

		mf->valid |= KDBUS_ATTACH_CREDS;
	}

	if (pids) {
		rcu_read_lock();
		mf->pid = get_pid(find_vpid(pids->tid));
		mf->tgid = get_pid(find_vpid(pids->pid));
		mf->ppid = get_pid(find_vpid(pids->ppid));
		rcu_read_unlock();

		mf->valid |= KDBUS_ATTACH_PIDS;
	}

	if (seclabel) {
		mf->seclabel = kstrdup(seclabel, GFP_KERNEL);
		if (!mf->seclabel)
			return -ENOMEM;

		mf->valid |= KDBUS_ATTACH_SECLABEL;
	}

	return 0;
}

/**
 * kdbus_meta_fake_uid() - the faked real uid
 * @mf:		Fake metadata object
 *
 * Return: the faked uid, or INVALID_UID if no creds were faked.
 */
kuid_t kdbus_meta_fake_uid(const struct kdbus_meta_fake *mf)
{
	if (!mf || !(mf->valid & KDBUS_ATTACH_CREDS))
		return INVALID_UID;
	return mf->uid;
}

/**
 * kdbus_meta_conn_init() - initialize connection metadata
 * @mc:		Connection metadata object
 */
void kdbus_meta_conn_init(struct kdbus_meta_conn *mc)
{
	memset(mc, 0, sizeof(*mc));
}

/**
 * kdbus_meta_conn_destroy() - release connection metadata
 * @mc:		Connection metadata object
 */
void kdbus_meta_conn_destroy(struct kdbus_meta_conn *mc)
{
	kfree(mc->conn_description);
	kfree(mc->owned_names_items);
	memset(mc, 0, sizeof(*mc));
}

static int kdbus_meta_conn_collect_names(struct kdbus_meta_conn *mc,
					 struct kdbus_conn *conn)
{
	const struct kdbus_name_owner *owner;
	struct kdbus_item *item;
	size_t slen, size = 0;

	lockdep_assert_held(&conn->ep->bus->name_registry->rwlock);

	list_for_each_entry(owner, &conn->names_list, conn_entry)
		if (kdbus_name_owner_is_primary(owner))
			size += KDBUS_ITEM_SIZE(sizeof(struct kdbus_name) +
						strlen(owner->name->name) + 1);

	if (!size)
		return 0;

	/* make sure we include zeroed padding for convenience helpers */
	item = kzalloc(size, GFP_KERNEL);
	if (!item)
		return -ENOMEM;

	mc->owned_names_items = item;
	mc->owned_names_size = size;

	list_for_each_entry(owner, &conn->names_list, conn_entry) {
		if (!kdbus_name_owner_is_primary(owner))
			continue;

		slen = strlen(owner->name->name) + 1;
		kdbus_item_set(item, KDBUS_ITEM_OWNED_NAME, NULL,
			       sizeof(struct kdbus_name) + slen);
		item->name.flags = kdbus_name_owner_flags(owner);
		memcpy(item->name.name, owner->name->name, slen);
		item = KDBUS_ITEM_NEXT(item);
	}

	/* sanity check: the buffer should be completely written now */
	WARN_ON((u8 *)item !=
			(u8 *)mc->owned_names_items + mc->owned_names_size);

	return 0;
}

/**
 * kdbus_meta_conn_collect() - Collect connection metadata
 * @mc:		Message metadata object
 * @conn:	Connection to collect data from, may be NULL (kernel)
 * @msg_seqnum:	Sequence number of the message to send
 * @what:	Attach flags to collect
 *
 * This collects connection metadata from @msg_seqnum and @conn and saves it
 * in @mc. Owned names are read under the name registry lock, which the
 * caller must hold.
 *
 * Return: 0 on success, negative error code on failure.
 */
int kdbus_meta_conn_collect(struct kdbus_meta_conn *mc,
			    struct kdbus_conn *conn,
			    u64 msg_seqnum, u64 what)
{
	int ret;

	what &= KDBUS_ATTACH_CONN & ~mc->collected;
	if (!what)
		return 0;

	if (what & KDBUS_ATTACH_TIMESTAMP) {
		mc->ts.seqnum = msg_seqnum;
		mc->ts.monotonic_ns = ktime_get_ns();
		mc->ts.realtime_ns = ktime_get_real_ns();
	}

	if (conn && (what & KDBUS_ATTACH_NAMES)) {
		ret = kdbus_meta_conn_collect_names(mc, conn);
		if (ret < 0)
			return ret;
	}

	if (conn && (what & KDBUS_ATTACH_CONN_DESCRIPTION) &&
	    conn->description) {
		mc->conn_description = kstrdup(conn->description, GFP_KERNEL);
		if (!mc->conn_description)
			return -ENOMEM;
	}

	mc->collected |= what;
	return 0;
}

static u64 kdbus_meta_uid(struct user_namespace *ns, kuid_t uid)
{
	return uid_valid(uid) ? from_kuid_munged(ns, uid) : (u32)-1;
}

static u64 kdbus_meta_gid(struct user_namespace *ns, kgid_t gid)
{
	return gid_valid(gid) ? from_kgid_munged(ns, gid) : (u32)-1;
}

/*
 * Translate the capabilities of @cred into @user_ns: verbatim if @user_ns
 * is the sender's namespace or a descendant of it; everything but
 * inheritable if the sender's euid owns a namespace on the path between
 * them (the creator of a namespace has all capabilities in it); otherwise
 * nothing.
 */
static void kdbus_meta_export_caps(u32 *words, const struct cred *cred,
				   struct user_namespace *user_ns)
{
	const kernel_cap_t *sets[4] = {
		&cred->cap_inheritable,
		&cred->cap_permitted,
		&cred->cap_effective,
		&cred->cap_bset,
	};
	struct user_namespace *iter;
	bool parent = false, owner = false;
	u32 valid;
	int i, j;

	for (iter = user_ns; iter; iter = iter->parent) {
		if (iter == cred->user_ns) {
			parent = true;
			break;
		}

		if (iter == &init_user_ns)
			break;

		if (iter->parent == cred->user_ns &&
		    uid_eq(iter->owner, cred->euid)) {
			owner = true;
			break;
		}
	}

	words[0] = CAP_LAST_CAP;
	for (i = 0; i < 4; i++) {
		for (j = 0; j < KDBUS_CAPS_U32S; j++) {
			u32 w = 0;

			if (parent)
				w = kdbus_cap_word(sets[i], j);
			else if (owner && i > 0)
				w = ~0U;

			/* clear the bits beyond the last capability */
			if (j == CAP_LAST_CAP / 32) {
				valid = (CAP_LAST_CAP % 32 == 31) ? ~0U :
					(1U << (CAP_LAST_CAP % 32 + 1)) - 1;
				w &= valid;
			} else if (j > CAP_LAST_CAP / 32) {
				w = 0;
			}

			words[1 + i * KDBUS_CAPS_U32S + j] = w;
		}
	}
}

static size_t kdbus_meta_str_size(const char *s)
{
	return KDBUS_ITEM_SIZE(strlen(s) + 1);
}

/*
 * Copy the OWNED_NAME items of @mc that @conn may see to @dst (if not NULL)
 * and return their size. On a custom endpoint the SEE policy hides names
 * also when they come as metadata; the caller holds the endpoint's policy
 * lock then, so that sizing and copying agree.
 */
static size_t kdbus_meta_names(const struct kdbus_meta_conn *mc,
			       struct kdbus_conn *conn, u8 *dst)
{
	const struct kdbus_item *item;
	size_t size = 0, item_size;

	if (!conn->ep->user) {
		if (dst)
			memcpy(dst, mc->owned_names_items, mc->owned_names_size);
		return mc->owned_names_size;
	}

	KDBUS_ITEMS_FOREACH(item, mc->owned_names_items,
			    mc->owned_names_size) {
		if (!kdbus_conn_policy_see_name_unlocked(conn,
							 item->name.name))
			continue;

		item_size = KDBUS_ALIGN8(item->size);
		if (dst)
			memcpy(dst + size, item, item_size);
		size += item_size;
	}

	return size;
}

/**
 * kdbus_meta_emit() - build the metadata items for a receiver
 * @mp:		Process metadata, or NULL
 * @mf:		Fake metadata, or NULL
 * @mc:		Connection metadata, or NULL
 * @conn:	Receiver of the items: its namespaces are used
 * @mask:	KDBUS_ATTACH_* items to emit (if available)
 * @out_items:	Output of the items (kmalloc'ed), NULL if none
 * @out_size:	Output of the size of @out_items, 0 if none
 *
 * Items are emitted in the order CREDS, PIDS, AUXGROUPS, TID_COMM,
 * PID_COMM, EXE, CMDLINE, CGROUP, CAPS, SECLABEL, AUDIT, OWNED_NAME...,
 * CONN_DESCRIPTION, TIMESTAMP. Faked CREDS/PIDS/SECLABEL replace the
 * process ones.
 *
 * Return: 0 on success, negative error code on failure.
 */
int kdbus_meta_emit(struct kdbus_meta_proc *mp,
		    struct kdbus_meta_fake *mf,
		    struct kdbus_meta_conn *mc,
		    struct kdbus_conn *conn,
		    u64 mask,
		    struct kdbus_item **out_items,
		    size_t *out_size)
{
	struct user_namespace *user_ns = conn->cred->user_ns;
	struct pid_namespace *pid_ns = conn->pid_ns;
	struct kdbus_item *items = NULL, *item;
	bool names_locked = false;
	char *exe_page = NULL;
	const char *exe = NULL;
	u64 valid = 0;
	size_t size = 0;
	int ret = 0;

	*out_items = NULL;
	*out_size = 0;

	if (mp)
		valid |= mp->valid;
	if (mf)
		valid |= mf->valid;
	if (mc)
		valid |= mc->collected & (KDBUS_ATTACH_TIMESTAMP |
					  (mc->owned_names_items ?
					   KDBUS_ATTACH_NAMES : 0) |
					  (mc->conn_description ?
					   KDBUS_ATTACH_CONN_DESCRIPTION : 0));
	mask &= valid;

	if (mp && (mask & KDBUS_ATTACH_EXE)) {
		struct path root;

		/* a path relative to another root would mean nothing */
		mask &= ~KDBUS_ATTACH_EXE;
		if (current->fs) {
			get_fs_root(current->fs, &root);
			if (path_equal(&root, &mp->root_path)) {
				exe_page = (void *)__get_free_page(GFP_KERNEL);
				if (!exe_page) {
					path_put(&root);
					return -ENOMEM;
				}

				exe = d_path(&mp->exe_path, exe_page,
					     PAGE_SIZE);
				if (IS_ERR(exe))
					exe = NULL;
				else
					mask |= KDBUS_ATTACH_EXE;
			}
			path_put(&root);
		}
	}

	/* SEE of a custom endpoint filters names: see kdbus_meta_names() */
	if (mc && (mask & KDBUS_ATTACH_NAMES) && conn->ep->user) {
		down_read(&conn->ep->policy_db.entries_rwlock);
		names_locked = true;
	}

	/* compute the size */
	if (mask & KDBUS_ATTACH_CREDS)
		size += KDBUS_ITEM_SIZE(sizeof(struct kdbus_creds));
	if (mask & KDBUS_ATTACH_PIDS)
		size += KDBUS_ITEM_SIZE(sizeof(struct kdbus_pids));
	if (mp && (mask & KDBUS_ATTACH_AUXGROUPS))
		size += KDBUS_ITEM_SIZE(mp->cred->group_info->ngroups *
					sizeof(u64));
	if (mp && (mask & KDBUS_ATTACH_TID_COMM))
		size += kdbus_meta_str_size(mp->tid_comm);
	if (mp && (mask & KDBUS_ATTACH_PID_COMM))
		size += kdbus_meta_str_size(mp->pid_comm);
	if (exe)
		size += kdbus_meta_str_size(exe);
	if (mp && (mask & KDBUS_ATTACH_CMDLINE))
		size += KDBUS_ITEM_SIZE(mp->cmdline_size);
	if (mp && (mask & KDBUS_ATTACH_CGROUP))
		size += kdbus_meta_str_size(mp->cgroup);
	if (mp && (mask & KDBUS_ATTACH_CAPS))
		size += KDBUS_ITEM_SIZE(sizeof(u32) *
					(1 + 4 * KDBUS_CAPS_U32S));
	if (mask & KDBUS_ATTACH_SECLABEL)
		size += kdbus_meta_str_size(mf && mf->seclabel ?
					    mf->seclabel : mp->seclabel);
	if (mp && (mask & KDBUS_ATTACH_AUDIT))
		size += KDBUS_ITEM_SIZE(sizeof(struct kdbus_audit));
	if (mc && (mask & KDBUS_ATTACH_NAMES))
		size += kdbus_meta_names(mc, conn, NULL);
	if (mc && (mask & KDBUS_ATTACH_CONN_DESCRIPTION))
		size += kdbus_meta_str_size(mc->conn_description);
	if (mc && (mask & KDBUS_ATTACH_TIMESTAMP))
		size += KDBUS_ITEM_SIZE(sizeof(struct kdbus_timestamp));

	if (!size)
		goto exit;

	items = kzalloc(size, GFP_KERNEL);
	if (!items) {
		ret = -ENOMEM;
		goto exit;
	}

	item = items;

	if (mask & KDBUS_ATTACH_CREDS) {
		struct kdbus_creds c;

		if (mf && (mf->valid & KDBUS_ATTACH_CREDS)) {
			c.uid = kdbus_meta_uid(user_ns, mf->uid);
			c.euid = kdbus_meta_uid(user_ns, mf->euid);
			c.suid = kdbus_meta_uid(user_ns, mf->suid);
			c.fsuid = kdbus_meta_uid(user_ns, mf->fsuid);
			c.gid = kdbus_meta_gid(user_ns, mf->gid);
			c.egid = kdbus_meta_gid(user_ns, mf->egid);
			c.sgid = kdbus_meta_gid(user_ns, mf->sgid);
			c.fsgid = kdbus_meta_gid(user_ns, mf->fsgid);
		} else {
			c.uid = kdbus_meta_uid(user_ns, mp->cred->uid);
			c.euid = kdbus_meta_uid(user_ns, mp->cred->euid);
			c.suid = kdbus_meta_uid(user_ns, mp->cred->suid);
			c.fsuid = kdbus_meta_uid(user_ns, mp->cred->fsuid);
			c.gid = kdbus_meta_gid(user_ns, mp->cred->gid);
			c.egid = kdbus_meta_gid(user_ns, mp->cred->egid);
			c.sgid = kdbus_meta_gid(user_ns, mp->cred->sgid);
			c.fsgid = kdbus_meta_gid(user_ns, mp->cred->fsgid);
		}
		item = kdbus_item_set(item, KDBUS_ITEM_CREDS, &c, sizeof(c));
	}

	if (mask & KDBUS_ATTACH_PIDS) {
		struct kdbus_pids p;

		if (mf && (mf->valid & KDBUS_ATTACH_PIDS)) {
			p.pid = pid_nr_ns(mf->tgid, pid_ns);
			p.tid = pid_nr_ns(mf->pid, pid_ns);
			p.ppid = pid_nr_ns(mf->ppid, pid_ns);
		} else {
			p.pid = pid_nr_ns(mp->tgid, pid_ns);
			p.tid = pid_nr_ns(mp->pid, pid_ns);
			p.ppid = pid_nr_ns(mp->ppid, pid_ns);
		}
		item = kdbus_item_set(item, KDBUS_ITEM_PIDS, &p, sizeof(p));
	}

	if (mp && (mask & KDBUS_ATTACH_AUXGROUPS)) {
		const struct group_info *gi = mp->cred->group_info;
		struct kdbus_item *next;
		int i;

		next = kdbus_item_set(item, KDBUS_ITEM_AUXGROUPS, NULL,
				      gi->ngroups * sizeof(u64));
		for (i = 0; i < gi->ngroups; i++)
			item->data64[i] = from_kgid_munged(user_ns,
							   gi->gid[i]);
		item = next;
	}

	if (mp && (mask & KDBUS_ATTACH_TID_COMM))
		item = kdbus_item_set(item, KDBUS_ITEM_TID_COMM, mp->tid_comm,
				      strlen(mp->tid_comm) + 1);

	if (mp && (mask & KDBUS_ATTACH_PID_COMM))
		item = kdbus_item_set(item, KDBUS_ITEM_PID_COMM, mp->pid_comm,
				      strlen(mp->pid_comm) + 1);

	if (exe)
		item = kdbus_item_set(item, KDBUS_ITEM_EXE, exe,
				      strlen(exe) + 1);

	if (mp && (mask & KDBUS_ATTACH_CMDLINE))
		item = kdbus_item_set(item, KDBUS_ITEM_CMDLINE, mp->cmdline,
				      mp->cmdline_size);

	if (mp && (mask & KDBUS_ATTACH_CGROUP))
		item = kdbus_item_set(item, KDBUS_ITEM_CGROUP, mp->cgroup,
				      strlen(mp->cgroup) + 1);

	if (mp && (mask & KDBUS_ATTACH_CAPS)) {
		u32 words[1 + 4 * KDBUS_CAPS_U32S];

		kdbus_meta_export_caps(words, mp->cred, user_ns);
		item = kdbus_item_set(item, KDBUS_ITEM_CAPS, words,
				      sizeof(words));
	}

	if (mask & KDBUS_ATTACH_SECLABEL) {
		const char *label = mf && mf->seclabel ? mf->seclabel :
							 mp->seclabel;

		item = kdbus_item_set(item, KDBUS_ITEM_SECLABEL, label,
				      strlen(label) + 1);
	}

	if (mp && (mask & KDBUS_ATTACH_AUDIT)) {
		struct kdbus_audit a = {
			.loginuid = from_kuid(user_ns, mp->audit_loginuid),
			.sessionid = mp->audit_sessionid,
		};

		item = kdbus_item_set(item, KDBUS_ITEM_AUDIT, &a, sizeof(a));
	}

	if (mc && (mask & KDBUS_ATTACH_NAMES))
		item = (struct kdbus_item *)((u8 *)item +
					     kdbus_meta_names(mc, conn,
							      (u8 *)item));

	if (mc && (mask & KDBUS_ATTACH_CONN_DESCRIPTION))
		item = kdbus_item_set(item, KDBUS_ITEM_CONN_DESCRIPTION,
				      mc->conn_description,
				      strlen(mc->conn_description) + 1);

	if (mc && (mask & KDBUS_ATTACH_TIMESTAMP))
		item = kdbus_item_set(item, KDBUS_ITEM_TIMESTAMP, &mc->ts,
				      sizeof(mc->ts));

	/* sanity check: the buffer should be completely written now */
	WARN_ON((u8 *)item != (u8 *)items + size);

	*out_items = items;
	*out_size = size;

exit:
	if (names_locked)
		up_read(&conn->ep->policy_db.entries_rwlock);
	if (exe_page)
		free_page((unsigned long)exe_page);
	return ret;
}

/**
 * kdbus_meta_msg_mask() - calculate the metadata a receiver gets
 * @snd:		sending connection, NULL for kernel notifications
 * @rcv:		receiving connection
 *
 * Return: the KDBUS_ATTACH_* items to attach to a message from @snd to
 *	   @rcv (see the rule at the top of this file).
 */
u64 kdbus_meta_msg_mask(const struct kdbus_conn *snd,
			const struct kdbus_conn *rcv)
{
	if (!snd)
		return KDBUS_ATTACH_TIMESTAMP;

	return atomic64_read(&rcv->attach_flags_recv) &
	       (KDBUS_ATTACH_IMPLICIT | atomic64_read(&snd->attach_flags_send));
}
