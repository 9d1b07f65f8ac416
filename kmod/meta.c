// SPDX-License-Identifier: GPL-2.0
/*
 * Metadata (spec 13): snapshots of a process, taken once and shared by
 * reference, and the items they turn into for one viewer.
 *
 * A snapshot keeps kernel-wide forms (kuid_t, struct pid, the cred) and
 * translates only when an item is written, because every viewer has its
 * own user and pid namespace. Strings that cost work to build (exe,
 * cmdline, cgroup, LSM label) are built at snapshot time, and only when
 * asked for. The metadata of one message is collected in msgmeta.c.
 */

#include <linux/audit.h>
#include <linux/cgroup.h>
#include <linux/cred.h>
#include <linux/dcache.h>
#include <linux/err.h>
#include <linux/fs_struct.h>
#include <linux/kref.h>
#include <linux/limits.h>
#include <linux/path.h>
#include <linux/pid.h>
#include <linux/pid_namespace.h>
#include <linux/rwsem.h>
#include <linux/sched.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/timekeeping.h>
#include <linux/uaccess.h>
#include <linux/uidgid.h>
#include <linux/user_namespace.h>

#include "bus.h"
#include "conn.h"
#include "ep.h"
#include "item.h"
#include "meta.h"
#include "names.h"
#include "policy.h"

/* the words per capability set in KDBUS_ITEM_CAPS (deviation 15) */
#define KD_CAP_WORDS	2

/* an unknown id in kdbus_creds */
#define KD_ID_UNKNOWN	((u64)(u32)-1)

struct kd_meta {
	struct kref kref;
	u64 has;			/* KDBUS_ATTACH_* present */

	/* CREDS, in kernel form: real or faked */
	kuid_t uid, euid, suid, fsuid;
	kgid_t gid, egid, sgid, fsgid;
	/* AUXGROUPS and CAPS read the snapshot's credentials */
	const struct cred *cred;

	/* PIDS: real ones are translated, faked ones are passed as given */
	struct pid *pid, *tid, *ppid;
	struct kdbus_pids fake_pids;
	bool pids_faked;

	char tid_comm[TASK_COMM_LEN];
	char pid_comm[TASK_COMM_LEN];
	char *exe;			/* as seen from @root */
	struct kd_root root;		/* who may get EXE (deviation 6) */
	char *cmdline;			/* NUL-separated, NUL-terminated */
	size_t cmdline_len;		/* with the final NUL */
	char *cgroup;
	char *seclabel;
	kuid_t loginuid;
	u32 sessionid;
};

static struct kd_meta *kd_meta_alloc(void)
{
	struct kd_meta *m = kzalloc(sizeof(*m), GFP_KERNEL_ACCOUNT);

	if (!m)
		return NULL;
	kref_init(&m->kref);
	kd_obj_new(KD_OBJ_META);
	return m;
}

static void kd_meta_free(struct kref *kref)
{
	struct kd_meta *m = container_of(kref, struct kd_meta, kref);

	if (m->cred)
		put_cred(m->cred);
	put_pid(m->pid);
	put_pid(m->tid);
	put_pid(m->ppid);
	kfree(m->exe);
	kfree(m->cmdline);
	kfree(m->cgroup);
	kfree(m->seclabel);
	kfree(m);
	kd_obj_gone(KD_OBJ_META);
}

/**
 * kd_root_of_current() - name the calling task's root directory
 * @root: filled with the device and inode of the root
 */
void kd_root_of_current(struct kd_root *root)
{
	struct path path;

	get_fs_root(current->fs, &path);
	root->dev = path.dentry->d_sb->s_dev;
	root->ino = d_inode(path.dentry)->i_ino;
	path_put(&path);
}

/**
 * kd_meta_get() - take a reference on a snapshot
 * @m:		the snapshot, or NULL
 *
 * Return: @m.
 */
struct kd_meta *kd_meta_get(struct kd_meta *m)
{
	if (m)
		kref_get(&m->kref);
	return m;
}

/**
 * kd_meta_put() - drop a reference on a snapshot; may sleep
 * @m:		the snapshot, or NULL
 */
void kd_meta_put(struct kd_meta *m)
{
	if (m)
		kref_put(&m->kref, kd_meta_free);
}

/**
 * kd_meta_has() - which items a snapshot can give
 * @m:		the snapshot, or NULL
 *
 * Return: the KDBUS_ATTACH_* bits of the items @m holds.
 */
u64 kd_meta_has(const struct kd_meta *m)
{
	return m ? m->has : 0;
}

/* CREDS, AUXGROUPS, CAPS: one reference on the task's credentials */
static void kd_meta_take_cred(struct kd_meta *m, u64 mask)
{
	const struct cred *c = get_current_cred();

	m->uid = c->uid;
	m->euid = c->euid;
	m->suid = c->suid;
	m->fsuid = c->fsuid;
	m->gid = c->gid;
	m->egid = c->egid;
	m->sgid = c->sgid;
	m->fsgid = c->fsgid;
	m->cred = c;
	m->has |= mask & (KDBUS_ATTACH_CREDS | KDBUS_ATTACH_AUXGROUPS |
			  KDBUS_ATTACH_CAPS);
}

static void kd_meta_take_pids(struct kd_meta *m)
{
	struct task_struct *parent;

	m->pid = get_task_pid(current, PIDTYPE_TGID);
	m->tid = get_task_pid(current, PIDTYPE_PID);
	rcu_read_lock();
	parent = rcu_dereference(current->real_parent);
	m->ppid = get_task_pid(parent, PIDTYPE_TGID);
	rcu_read_unlock();
	m->has |= KDBUS_ATTACH_PIDS;
}

/* the exe path as the task sees it, and the root it sees it from */
static int kd_meta_take_exe(struct kd_meta *m)
{
	struct file *exe;
	char *buf, *path;
	int ret = 0;

	if (!current->mm || !current->fs)
		return 0;
	exe = kd_mm_exe_file(current->mm);
	if (!exe)
		return 0;

	buf = kmalloc(PATH_MAX, GFP_KERNEL);
	if (!buf) {
		ret = -ENOMEM;
		goto out;
	}
	path = d_path(&exe->f_path, buf, PATH_MAX);
	if (IS_ERR(path))
		goto out;	/* no name that fits: no item */
	m->exe = kstrdup(path, GFP_KERNEL_ACCOUNT);
	if (!m->exe) {
		ret = -ENOMEM;
		goto out;
	}
	kd_root_of_current(&m->root);
	m->has |= KDBUS_ATTACH_EXE;
out:
	kfree(buf);
	fput(exe);
	return ret;
}

/*
 * The whole argument vector (deviation 2), read from the task's own
 * memory: the caller holds no lock. Cut at KD_CMDLINE_MAX, NUL included.
 */
static int kd_meta_take_cmdline(struct kd_meta *m)
{
	struct mm_struct *mm = current->mm;
	unsigned long start, end;
	size_t len;
	char *buf;

	if (!mm || (current->flags & PF_KTHREAD))
		return 0;
	spin_lock(&mm->arg_lock);
	start = mm->arg_start;
	end = mm->arg_end;
	spin_unlock(&mm->arg_lock);
	if (end <= start)
		return 0;

	len = min_t(unsigned long, end - start, KD_CMDLINE_MAX - 1);
	buf = kmalloc(len + 1, GFP_KERNEL_ACCOUNT);
	if (!buf)
		return -ENOMEM;
	if (copy_from_user(buf, (const char __user *)start, len)) {
		kfree(buf);
		return 0;	/* the task unmapped its arguments */
	}
	/* the vector normally ends with a NUL already: keep just one */
	buf[len] = '\0';
	m->cmdline_len = buf[len - 1] ? len + 1 : len;
	m->cmdline = buf;
	m->has |= KDBUS_ATTACH_CMDLINE;
	return 0;
}

/* the absolute path on the unified hierarchy (deviation 5) */
static int kd_meta_take_cgroup(struct kd_meta *m)
{
#ifdef CONFIG_CGROUPS
	char *buf;
	int len;

	buf = kmalloc(PATH_MAX, GFP_KERNEL);
	if (!buf)
		return -ENOMEM;
	/* the cgroup and its kernfs node are freed only after RCU */
	rcu_read_lock();
	len = cgroup_path(task_dfl_cgroup(current), buf, PATH_MAX);
	rcu_read_unlock();
	if (len < 0 || len >= PATH_MAX) {
		kfree(buf);
		return 0;	/* no path that fits: no item */
	}
	m->cgroup = kstrdup(buf, GFP_KERNEL_ACCOUNT);
	kfree(buf);
	if (!m->cgroup)
		return -ENOMEM;
	m->has |= KDBUS_ATTACH_CGROUP;
#endif
	return 0;
}

static int kd_meta_take_seclabel(struct kd_meta *m)
{
	char *label = kd_current_seclabel(GFP_KERNEL_ACCOUNT);

	if (IS_ERR(label))
		return PTR_ERR(label);
	if (label) {
		m->seclabel = label;
		m->has |= KDBUS_ATTACH_SECLABEL;
	}
	return 0;
}

static void kd_meta_take_audit(struct kd_meta *m)
{
#ifdef CONFIG_AUDIT
	m->loginuid = audit_get_loginuid(current);
	m->sessionid = audit_get_sessionid(current);
	m->has |= KDBUS_ATTACH_AUDIT;
#endif
}

/**
 * kd_meta_snapshot() - describe the current task
 * @mask:	KDBUS_ATTACH_* wanted; only process items are collected
 *
 * Items the task does not have (no LSM label, no exe) are left out. May
 * sleep and reads the task's own memory for CMDLINE: no lock held.
 *
 * Return: a new snapshot, or NULL when out of memory.
 */
struct kd_meta *kd_meta_snapshot(u64 mask)
{
	struct kd_meta *m;
	int ret = 0;

	mask &= KD_ATTACH_PROC;
	m = kd_meta_alloc();
	if (!m)
		return NULL;

	if (mask & (KDBUS_ATTACH_CREDS | KDBUS_ATTACH_AUXGROUPS |
		    KDBUS_ATTACH_CAPS))
		kd_meta_take_cred(m, mask);
	if (mask & KDBUS_ATTACH_PIDS)
		kd_meta_take_pids(m);
	if (mask & KDBUS_ATTACH_TID_COMM) {
		get_task_comm(m->tid_comm, current);
		m->has |= KDBUS_ATTACH_TID_COMM;
	}
	if (mask & KDBUS_ATTACH_PID_COMM) {
		get_task_comm(m->pid_comm, current->group_leader);
		m->has |= KDBUS_ATTACH_PID_COMM;
	}
	if (mask & KDBUS_ATTACH_EXE)
		ret = kd_meta_take_exe(m);
	if (!ret && (mask & KDBUS_ATTACH_CMDLINE))
		ret = kd_meta_take_cmdline(m);
	if (!ret && (mask & KDBUS_ATTACH_CGROUP))
		ret = kd_meta_take_cgroup(m);
	if (!ret && (mask & KDBUS_ATTACH_SECLABEL))
		ret = kd_meta_take_seclabel(m);
	if (mask & KDBUS_ATTACH_AUDIT)
		kd_meta_take_audit(m);

	if (ret) {
		kd_meta_put(m);
		return NULL;
	}
	return m;
}

/* a faked id: u32 -1 (or anything wider) stays unknown */
static kuid_t kd_fake_uid(struct user_namespace *ns, u64 id)
{
	return id >= KD_ID_UNKNOWN ? INVALID_UID : make_kuid(ns, id);
}

static kgid_t kd_fake_gid(struct user_namespace *ns, u64 id)
{
	return id >= KD_ID_UNKNOWN ? INVALID_GID : make_kgid(ns, id);
}

/**
 * kd_meta_faked() - metadata an owner hands in at HELLO
 * @creds:	CREDS to claim, in the caller's user namespace, or NULL
 * @pids:	PIDS to claim, passed to viewers untranslated, or NULL
 * @seclabel:	the LSM label to claim, or NULL
 *
 * The snapshot holds these items and nothing else of the process.
 *
 * Return: a new snapshot, or NULL when out of memory.
 */
struct kd_meta *kd_meta_faked(const struct kdbus_creds *creds,
			      const struct kdbus_pids *pids,
			      const char *seclabel)
{
	struct user_namespace *ns = current_user_ns();
	struct kd_meta *m = kd_meta_alloc();

	if (!m)
		return NULL;

	if (creds) {
		m->uid = kd_fake_uid(ns, creds->uid);
		m->euid = kd_fake_uid(ns, creds->euid);
		m->suid = kd_fake_uid(ns, creds->suid);
		m->fsuid = kd_fake_uid(ns, creds->fsuid);
		m->gid = kd_fake_gid(ns, creds->gid);
		m->egid = kd_fake_gid(ns, creds->egid);
		m->sgid = kd_fake_gid(ns, creds->sgid);
		m->fsgid = kd_fake_gid(ns, creds->fsgid);
		m->has |= KDBUS_ATTACH_CREDS;
	}
	if (pids) {
		m->fake_pids = *pids;
		m->pids_faked = true;
		m->has |= KDBUS_ATTACH_PIDS;
	}
	if (seclabel) {
		m->seclabel = kstrdup(seclabel, GFP_KERNEL_ACCOUNT);
		if (!m->seclabel) {
			kd_meta_put(m);
			return NULL;
		}
		m->has |= KDBUS_ATTACH_SECLABEL;
	}
	return m;
}

static u64 kd_uid_nr(struct user_namespace *ns, kuid_t uid)
{
	return uid_valid(uid) ? from_kuid_munged(ns, uid) : KD_ID_UNKNOWN;
}

static u64 kd_gid_nr(struct user_namespace *ns, kgid_t gid)
{
	return gid_valid(gid) ? from_kgid_munged(ns, gid) : KD_ID_UNKNOWN;
}

static void kd_emit_creds(struct kd_buf *out, const struct kd_meta *m,
			  struct user_namespace *ns)
{
	struct kdbus_creds *c = kd_buf_item(out, KDBUS_ITEM_CREDS, sizeof(*c));

	if (!c)
		return;
	c->uid = kd_uid_nr(ns, m->uid);
	c->euid = kd_uid_nr(ns, m->euid);
	c->suid = kd_uid_nr(ns, m->suid);
	c->fsuid = kd_uid_nr(ns, m->fsuid);
	c->gid = kd_gid_nr(ns, m->gid);
	c->egid = kd_gid_nr(ns, m->egid);
	c->sgid = kd_gid_nr(ns, m->sgid);
	c->fsgid = kd_gid_nr(ns, m->fsgid);
}

static void kd_emit_pids(struct kd_buf *out, const struct kd_meta *m,
			 struct pid_namespace *ns)
{
	struct kdbus_pids *p = kd_buf_item(out, KDBUS_ITEM_PIDS, sizeof(*p));

	if (!p)
		return;
	if (m->pids_faked) {
		*p = m->fake_pids;
		return;
	}
	/* 0 where the process has no number in the viewer's namespace */
	p->pid = pid_nr_ns(m->pid, ns);
	p->tid = pid_nr_ns(m->tid, ns);
	p->ppid = pid_nr_ns(m->ppid, ns);
}

static void kd_emit_groups(struct kd_buf *out, const struct kd_meta *m,
			   struct user_namespace *ns)
{
	const struct group_info *gi = m->cred->group_info;
	unsigned int i, n = gi ? gi->ngroups : 0;
	u64 *gids;

	gids = kd_buf_item(out, KDBUS_ITEM_AUXGROUPS, n * sizeof(u64));
	if (!gids)
		return;
	for (i = 0; i < n; i++)
		gids[i] = from_kgid_munged(ns, gi->gid[i]);
}

enum kd_caps_view {
	KD_CAPS_NONE,		/* the viewer is outside the task's reach */
	KD_CAPS_FULL,		/* the task owns a namespace on the way */
	KD_CAPS_ASIS,		/* the viewer is in the task's namespace or below */
};

/*
 * What the capabilities of @c mean in @to, the way the capability checks
 * see it: walking up from @to, reaching the task's namespace keeps them;
 * passing a child of it that the task's euid owns gives all of them.
 */
static enum kd_caps_view kd_caps_view(const struct cred *c,
				      const struct user_namespace *to)
{
	const struct user_namespace *ns;

	for (ns = to; ns; ns = ns->parent) {
		if (ns == c->user_ns)
			return KD_CAPS_ASIS;
		if (ns->level <= c->user_ns->level)
			break;
		if (ns->parent == c->user_ns && uid_eq(ns->owner, c->euid))
			return KD_CAPS_FULL;
	}
	return KD_CAPS_NONE;
}

static void kd_emit_caps(struct kd_buf *out, const struct kd_meta *m,
			 const struct user_namespace *ns)
{
	const struct cred *c = m->cred;
	kernel_cap_t sets[4];
	struct kdbus_caps *caps;
	unsigned int s, w;

	switch (kd_caps_view(c, ns)) {
	case KD_CAPS_ASIS:
		sets[0] = c->cap_inheritable;
		sets[1] = c->cap_permitted;
		sets[2] = c->cap_effective;
		sets[3] = c->cap_bset;
		break;
	case KD_CAPS_FULL:
		sets[0] = CAP_EMPTY_SET;
		sets[1] = CAP_FULL_SET;
		sets[2] = CAP_FULL_SET;
		sets[3] = CAP_FULL_SET;
		break;
	default:
		sets[0] = CAP_EMPTY_SET;
		sets[1] = CAP_EMPTY_SET;
		sets[2] = CAP_EMPTY_SET;
		sets[3] = CAP_EMPTY_SET;
		break;
	}

	caps = kd_buf_item(out, KDBUS_ITEM_CAPS,
			   offsetof(struct kdbus_caps, caps) +
			   sizeof(u32) * KD_CAP_WORDS * ARRAY_SIZE(sets));
	if (!caps)
		return;
	caps->last_cap = CAP_LAST_CAP;
	for (s = 0; s < ARRAY_SIZE(sets); s++)
		for (w = 0; w < KD_CAP_WORDS; w++)
			caps->caps[s * KD_CAP_WORDS + w] =
				kd_cap_word(sets[s], w);
}

static void kd_emit_audit(struct kd_buf *out, const struct kd_meta *m,
			  struct user_namespace *ns)
{
	struct kdbus_audit *a = kd_buf_item(out, KDBUS_ITEM_AUDIT, sizeof(*a));

	if (!a)
		return;
	a->sessionid = m->sessionid;
	a->loginuid = from_kuid(ns, m->loginuid);	/* -1 if unmapped */
}

/**
 * kd_meta_emit() - write the process items of a snapshot for one viewer
 * @out:	where the items go
 * @m:		the snapshot, or NULL
 * @mask:	KDBUS_ATTACH_* wanted; what @m lacks is skipped
 * @viewer:	the connection that will read them
 *
 * Ids are translated into the viewer's user namespace, pids into its pid
 * namespace; EXE is written only for a viewer with the same root.
 */
void kd_meta_emit(struct kd_buf *out, const struct kd_meta *m, u64 mask,
		  const struct kd_conn *viewer)
{
	struct user_namespace *ns;

	if (!m)
		return;
	mask &= m->has;
	if (!mask)
		return;
	ns = viewer->cred->user_ns;

	if (mask & KDBUS_ATTACH_CREDS)
		kd_emit_creds(out, m, ns);
	if (mask & KDBUS_ATTACH_PIDS)
		kd_emit_pids(out, m, viewer->pid_ns);
	if (mask & KDBUS_ATTACH_AUXGROUPS)
		kd_emit_groups(out, m, ns);
	if (mask & KDBUS_ATTACH_TID_COMM)
		kd_buf_item_str(out, KDBUS_ITEM_TID_COMM, m->tid_comm);
	if (mask & KDBUS_ATTACH_PID_COMM)
		kd_buf_item_str(out, KDBUS_ITEM_PID_COMM, m->pid_comm);
	if ((mask & KDBUS_ATTACH_EXE) && kd_root_equal(&m->root, &viewer->root))
		kd_buf_item_str(out, KDBUS_ITEM_EXE, m->exe);
	if (mask & KDBUS_ATTACH_CMDLINE) {
		void *p = kd_buf_item(out, KDBUS_ITEM_CMDLINE, m->cmdline_len);

		if (p)
			memcpy(p, m->cmdline, m->cmdline_len);
	}
	if (mask & KDBUS_ATTACH_CGROUP)
		kd_buf_item_str(out, KDBUS_ITEM_CGROUP, m->cgroup);
	if (mask & KDBUS_ATTACH_CAPS)
		kd_emit_caps(out, m, ns);
	if (mask & KDBUS_ATTACH_SECLABEL)
		kd_buf_item_str(out, KDBUS_ITEM_SECLABEL, m->seclabel);
	if (mask & KDBUS_ATTACH_AUDIT)
		kd_emit_audit(out, m, ns);
}

static void kd_emit_owned_name(struct kd_buf *out, const char *name,
			       u64 flags)
{
	size_t len = strlen(name) + 1;
	struct kdbus_name *n;

	n = kd_buf_item(out, KDBUS_ITEM_OWNED_NAME, sizeof(*n) + len);
	if (!n)
		return;
	n->flags = flags;
	memcpy(n->name, name, len);
}

/* the names @conn holds now, minus those @viewer (if any) may not see */
static void kd_emit_held_names(struct kd_buf *out, const struct kd_conn *conn,
			       const struct kd_conn *viewer)
{
	const struct kd_owner *o;

	list_for_each_entry(o, &conn->names, conn_node) {
		if (kd_name_primary(o->name) != o)
			continue;	/* waiting in line */
		if (viewer && !kd_may_see_name(viewer, o->name->str))
			continue;
		kd_emit_owned_name(out, o->name->str,
				   o->flags | KDBUS_NAME_PRIMARY);
	}
}

/**
 * kd_meta_emit_names() - write an OWNED_NAME item per name a peer holds
 * @out:	where the items go
 * @conn:	the peer
 * @viewer:	the connection that will read them: names it may not SEE
 *		are left out
 *
 * Only names @conn is the primary owner of (or the standing activator
 * of) count. Caller holds bus->names.lock.
 */
void kd_meta_emit_names(struct kd_buf *out, const struct kd_conn *conn,
			const struct kd_conn *viewer)
{
	kd_emit_held_names(out, conn, viewer);
}
