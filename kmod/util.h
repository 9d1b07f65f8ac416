/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers shared by all parts of kdbus: alignment, user copies, names,
 * attach-flag sanitising, and the object counters used for leak detection.
 */

#ifndef __KDBUS_UTIL_H
#define __KDBUS_UTIL_H

#include <linux/atomic.h>
#include <linux/dcache.h>
#include <linux/kernel.h>
#include <linux/uidgid.h>
#include <linux/uio.h>
#include <linux/user_namespace.h>

#include <linux/kdbus.h>

#define KDBUS_ALIGN8(_s)		ALIGN((_s), 8)
#define KDBUS_IS_ALIGNED8(_s)		(IS_ALIGNED((unsigned long)(_s), 8))

#define KDBUS_PTR(_u64)			u64_to_user_ptr(_u64)

/* metadata that receivers may always ask for (no sender opt-in needed) */
#define KDBUS_ATTACH_IMPLICIT		(KDBUS_ATTACH_TIMESTAMP |	\
					 KDBUS_ATTACH_CREDS |		\
					 KDBUS_ATTACH_PIDS |		\
					 KDBUS_ATTACH_AUXGROUPS |	\
					 KDBUS_ATTACH_NAMES |		\
					 KDBUS_ATTACH_CONN_DESCRIPTION)

/* metadata collected from the sending process (not the connection) */
#define KDBUS_ATTACH_PROC		(KDBUS_ATTACH_CREDS |		\
					 KDBUS_ATTACH_PIDS |		\
					 KDBUS_ATTACH_AUXGROUPS |	\
					 KDBUS_ATTACH_TID_COMM |	\
					 KDBUS_ATTACH_PID_COMM |	\
					 KDBUS_ATTACH_EXE |		\
					 KDBUS_ATTACH_CMDLINE |		\
					 KDBUS_ATTACH_CGROUP |		\
					 KDBUS_ATTACH_CAPS |		\
					 KDBUS_ATTACH_SECLABEL |	\
					 KDBUS_ATTACH_AUDIT)

/* metadata collected from the sending connection */
#define KDBUS_ATTACH_CONN		(KDBUS_ATTACH_TIMESTAMP |	\
					 KDBUS_ATTACH_NAMES |		\
					 KDBUS_ATTACH_CONN_DESCRIPTION)

/**
 * kdbus_member_set_user - write a structure member to user memory
 * @_s:		kernel source
 * @_b:		user address of the structure
 * @_t:		structure type
 * @_m:		member name
 *
 * Return: 0 on success, -EFAULT on failure.
 */
#define kdbus_member_set_user(_s, _b, _t, _m)				\
({									\
	u64 __user *_sz =						\
		(void __user *)((u8 __user *)(_b) + offsetof(_t, _m));	\
	copy_to_user(_sz, _s, sizeof(((_t *)0)->_m)) ? -EFAULT : 0;	\
})

/**
 * kdbus_strhash - hash a string
 * @str:	NUL-terminated string
 *
 * Return: the hash value.
 */
static inline unsigned int kdbus_strhash(const char *str)
{
	return full_name_hash(NULL, str, strlen(str));
}

/**
 * kdbus_str_valid - check that a buffer is one NUL-terminated string
 * @str:	buffer
 * @size:	buffer size, including the terminating NUL
 *
 * Return: true if @str contains exactly one NUL, as its last byte.
 */
static inline bool kdbus_str_valid(const char *str, size_t size)
{
	return size > 0 && memchr(str, '\0', size) == str + size - 1;
}

int kdbus_copy_from_user(void *dest, void __user *user_ptr, size_t size);
int kdbus_verify_uid_prefix(const char *name, struct user_namespace *user_ns,
			    kuid_t kuid);
int kdbus_sanitize_attach_flags(u64 flags, u64 *attach_flags);

void kdbus_kvec_set(struct kvec *kvec, void *src, size_t len, u64 *total_len);
size_t kdbus_kvec_pad(struct kvec *kvec, u64 *len);

/*
 * Object counters: every allocation of a kdbus object class increments its
 * counter, every free decrements it. On module exit a non-zero counter is
 * reported as a leak; the counters are exported through debugfs so tests
 * can compare them against a baseline.
 */
enum kdbus_obj {
	KDBUS_OBJ_NODE,
	KDBUS_OBJ_DOMAIN,
	KDBUS_OBJ_USER,
	KDBUS_OBJ_BUS,
	KDBUS_OBJ_ENDPOINT,
	KDBUS_OBJ_HANDLE,
	KDBUS_OBJ_CONN,
	KDBUS_OBJ_POOL,
	KDBUS_OBJ_SLICE,
	KDBUS_OBJ_QUEUE_ENTRY,
	KDBUS_OBJ_REPLY,
	KDBUS_OBJ_STAGING,
	KDBUS_OBJ_GAPS,
	KDBUS_OBJ_META_PROC,
	KDBUS_OBJ_META_FAKE,
	KDBUS_OBJ_NAME_ENTRY,
	KDBUS_OBJ_NAME_OWNER,
	KDBUS_OBJ_MATCH_DB,
	KDBUS_OBJ_MATCH_ENTRY,
	KDBUS_OBJ_MATCH_RULE,
	KDBUS_OBJ_POLICY_ENTRY,
	KDBUS_OBJ_POLICY_ACCESS,
	_KDBUS_OBJ_MAX,
};

extern atomic_long_t kdbus_obj_count[_KDBUS_OBJ_MAX];
extern const char * const kdbus_obj_names[_KDBUS_OBJ_MAX];

static inline void kdbus_obj_inc(enum kdbus_obj obj)
{
	atomic_long_inc(&kdbus_obj_count[obj]);
}

static inline void kdbus_obj_dec(enum kdbus_obj obj)
{
	atomic_long_dec(&kdbus_obj_count[obj]);
}

int kdbus_obj_report_leaks(void);

#endif
