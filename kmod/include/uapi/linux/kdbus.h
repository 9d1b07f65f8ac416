/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * kdbus: the userspace interface of the kdbus IPC bus.
 *
 * Everything in this file is wire format shared with userspace: the
 * numeric values, the ioctl numbers and the size and offset of every
 * field are frozen. All structures are 8-byte aligned and laid out the
 * same on 32-bit and 64-bit systems; user addresses travel in __u64.
 *
 * Every ioctl takes one structure that starts with a __u64 size (the
 * whole argument, trailing items included) and a __u64 flags word; most
 * follow them with a __u64 return_flags the kernel fills in. Variable
 * data travels as a list of items (struct kdbus_item), each padded to a
 * multiple of 8 bytes.
 */

#ifndef _UAPI_KDBUS_H_
#define _UAPI_KDBUS_H_

#include <linux/ioctl.h>
#include <linux/stddef.h>
#include <linux/types.h>

#define KDBUS_IOCTL_MAGIC		0x95
/* source id of messages the kernel generates itself */
#define KDBUS_SRC_ID_KERNEL		(0)
/* destination id meaning "look at the DST_NAME item instead" */
#define KDBUS_DST_ID_NAME		(0)
/* an ID match rule that accepts any connection */
#define KDBUS_MATCH_ID_ANY		(~0ULL)
/* destination id of a signal sent to every interested connection */
#define KDBUS_DST_ID_BROADCAST		(~0ULL)
/* in any flags field: report what is supported instead of acting */
#define KDBUS_FLAG_NEGOTIATE		(1ULL << 63)

/**
 * struct kdbus_notify_id_change - payload of ID_ADD and ID_REMOVE
 * @id:		the connection that appeared or went away
 * @flags:	that connection's KDBUS_HELLO_* flags
 *
 * Also used inside struct kdbus_notify_name_change to describe the old
 * and the new owner of a name; an id of 0 there means "nobody".
 */
struct kdbus_notify_id_change {
	__u64 id;
	__u64 flags;
} __attribute__((__aligned__(8)));

/**
 * struct kdbus_notify_name_change - payload of NAME_ADD, _REMOVE, _CHANGE
 * @old_id:	the owner before the change, with its name flags
 * @new_id:	the owner after the change, with its name flags
 * @name:	the well-known name concerned, NUL-terminated
 */
struct kdbus_notify_name_change {
	struct kdbus_notify_id_change old_id;
	struct kdbus_notify_id_change new_id;
	char name[];
} __attribute__((__aligned__(8)));

/**
 * struct kdbus_creds - user and group ids of a process
 * @uid:	real user id
 * @euid:	effective user id
 * @suid:	saved user id
 * @fsuid:	filesystem user id
 * @gid:	real group id
 * @egid:	effective group id
 * @sgid:	saved group id
 * @fsgid:	filesystem group id
 *
 * The ids are translated into the user namespace of the reader; an id
 * that has no value there reads 0xFFFFFFFF.
 */
struct kdbus_creds {
	__u64 uid;
	__u64 euid;
	__u64 suid;
	__u64 fsuid;
	__u64 gid;
	__u64 egid;
	__u64 sgid;
	__u64 fsgid;
} __attribute__((__aligned__(8)));

/**
 * struct kdbus_pids - process, thread and parent ids
 * @pid:	thread group id of the process
 * @tid:	id of the thread
 * @ppid:	thread group id of the parent process
 *
 * As seen from the reader's pid namespace; 0 where a task has no id
 * there.
 */
struct kdbus_pids {
	__u64 pid;
	__u64 tid;
	__u64 ppid;
} __attribute__((__aligned__(8)));

/**
 * struct kdbus_caps - capability sets of a process
 * @last_cap:	number of the highest capability the kernel knows
 * @caps:	four bitmaps of 32-bit words each, in the order inheritable,
 *		permitted, effective and bounding; each bitmap has room for
 *		bits 0 to @last_cap
 */
struct kdbus_caps {
	__u32 last_cap;
	__u32 caps[];
} __attribute__((__aligned__(8)));

/**
 * struct kdbus_audit - audit identity of a process
 * @sessionid:	audit session
 * @loginuid:	login user id, translated for the reader
 */
struct kdbus_audit {
	__u32 sessionid;
	__u32 loginuid;
} __attribute__((__aligned__(8)));

/**
 * struct kdbus_timestamp - when and in which order a message was sent
 * @seqnum:	the bus-wide sequence number, shared by all messages and
 *		kernel notifications of the bus
 * @monotonic_ns:	CLOCK_MONOTONIC at sending time, in nanoseconds
 * @realtime_ns:	CLOCK_REALTIME at sending time, in nanoseconds
 */
struct kdbus_timestamp {
	__u64 seqnum;
	__u64 monotonic_ns;
	__u64 realtime_ns;
} __attribute__((__aligned__(8)));

/**
 * struct kdbus_vec - a piece of message payload
 * @size:	number of bytes
 * @address:	PAYLOAD_VEC (sending): where the bytes are in the
 *		sender's memory; 0 adds padding instead of data
 * @offset:	PAYLOAD_OFF (receiving): where the bytes are, counted from
 *		the start of the received message; ~0 for padding
 */
struct kdbus_vec {
	__u64 size;
	union {
		__u64 address;
		__u64 offset;
	};
} __attribute__((__aligned__(8)));

/**
 * struct kdbus_bloom_parameter - shape of the bloom filters of a bus
 * @size:	bytes in every filter (a multiple of 8)
 * @n_hash:	number of hash functions userspace sets bits with
 *
 * Chosen at bus creation; the kernel does no hashing itself, it only
 * passes these values on to every connection.
 */
struct kdbus_bloom_parameter {
	__u64 size;
	__u64 n_hash;
} __attribute__((__aligned__(8)));

/**
 * struct kdbus_bloom_filter - the bloom filter a signal carries
 * @generation:	which generation of match masks it is to be tested with
 * @data:	the filter bits, as many as the bus' bloom size
 */
struct kdbus_bloom_filter {
	__u64 generation;
	__u64 data[];
} __attribute__((__aligned__(8)));

/**
 * struct kdbus_memfd - a range of a sealed memfd passed as payload
 * @start:	first byte of the range within the file
 * @size:	length of the range
 * @fd:		the file descriptor: the sender's on input; on receipt the
 *		number installed for the receiver
 * @__pad:	reserved, keeps the struct a multiple of 8 bytes
 */
struct kdbus_memfd {
	__u64 start;
	__u64 size;
	int fd;
	__u32 __pad;
} __attribute__((__aligned__(8)));

/**
 * struct kdbus_name - a well-known name with the state of one owner
 * @flags:	KDBUS_NAME_* describing that owner's claim on the name
 * @name:	the name, NUL-terminated
 */
struct kdbus_name {
	__u64 flags;
	char name[];
} __attribute__((__aligned__(8)));

/**
 * enum kdbus_policy_access_type - whom a policy entry applies to
 * @_KDBUS_POLICY_ACCESS_NULL:	not a valid type
 * @KDBUS_POLICY_ACCESS_USER:	one user id
 * @KDBUS_POLICY_ACCESS_GROUP:	one group id
 * @KDBUS_POLICY_ACCESS_WORLD:	everyone
 */
enum kdbus_policy_access_type {
	_KDBUS_POLICY_ACCESS_NULL,
	KDBUS_POLICY_ACCESS_USER,
	KDBUS_POLICY_ACCESS_GROUP,
	KDBUS_POLICY_ACCESS_WORLD,
};

/**
 * enum kdbus_policy_type - what a policy entry allows; each level
 *			    includes the ones below it
 * @KDBUS_POLICY_SEE:	learn that the name exists
 * @KDBUS_POLICY_TALK:	send messages to its owner
 * @KDBUS_POLICY_OWN:	acquire the name
 */
enum kdbus_policy_type {
	KDBUS_POLICY_SEE	= 0,
	KDBUS_POLICY_TALK,
	KDBUS_POLICY_OWN,
};

/**
 * struct kdbus_policy_access - one grant of a policy entry
 * @type:	KDBUS_POLICY_ACCESS_* (who)
 * @access:	KDBUS_POLICY_* (what)
 * @id:		the user or group id for USER and GROUP, as seen by the
 *		uploader; 0 for WORLD
 */
struct kdbus_policy_access {
	__u64 type;
	__u64 access;
	__u64 id;
} __attribute__((__aligned__(8)));

/**
 * enum kdbus_attach_flags - kinds of metadata about a peer
 * @KDBUS_ATTACH_TIMESTAMP:	sending time and sequence number
 * @KDBUS_ATTACH_CREDS:		user and group ids
 * @KDBUS_ATTACH_PIDS:		process, thread and parent ids
 * @KDBUS_ATTACH_AUXGROUPS:	supplementary groups
 * @KDBUS_ATTACH_NAMES:		the well-known names it owns
 * @KDBUS_ATTACH_TID_COMM:	command name of the thread
 * @KDBUS_ATTACH_PID_COMM:	command name of the process
 * @KDBUS_ATTACH_EXE:		path of the executable
 * @KDBUS_ATTACH_CMDLINE:	command line
 * @KDBUS_ATTACH_CGROUP:	control group path
 * @KDBUS_ATTACH_CAPS:		capability sets
 * @KDBUS_ATTACH_SECLABEL:	security label
 * @KDBUS_ATTACH_AUDIT:		audit session and login uid
 * @KDBUS_ATTACH_CONN_DESCRIPTION: the description given at HELLO
 * @_KDBUS_ATTACH_ALL:		every kind above
 * @_KDBUS_ATTACH_ANY:		"all there is", accepted as input
 *
 * Bit n corresponds to item type _KDBUS_ITEM_ATTACH_BASE + n.
 */
enum kdbus_attach_flags {
	KDBUS_ATTACH_TIMESTAMP		=  1ULL <<  0,
	KDBUS_ATTACH_CREDS		=  1ULL <<  1,
	KDBUS_ATTACH_PIDS		=  1ULL <<  2,
	KDBUS_ATTACH_AUXGROUPS		=  1ULL <<  3,
	KDBUS_ATTACH_NAMES		=  1ULL <<  4,
	KDBUS_ATTACH_TID_COMM		=  1ULL <<  5,
	KDBUS_ATTACH_PID_COMM		=  1ULL <<  6,
	KDBUS_ATTACH_EXE		=  1ULL <<  7,
	KDBUS_ATTACH_CMDLINE		=  1ULL <<  8,
	KDBUS_ATTACH_CGROUP		=  1ULL <<  9,
	KDBUS_ATTACH_CAPS		=  1ULL << 10,
	KDBUS_ATTACH_SECLABEL		=  1ULL << 11,
	KDBUS_ATTACH_AUDIT		=  1ULL << 12,
	KDBUS_ATTACH_CONN_DESCRIPTION	=  1ULL << 13,
	_KDBUS_ATTACH_ALL		=  (1ULL << 14) - 1,
	_KDBUS_ATTACH_ANY		=  ~0ULL
};

/**
 * enum kdbus_item_type - what an item holds
 * @_KDBUS_ITEM_NULL:		never valid
 * @_KDBUS_ITEM_USER_BASE:	first type userspace passes in
 * @KDBUS_ITEM_NEGOTIATE:	__u64 list of item types to ask about
 * @KDBUS_ITEM_PAYLOAD_VEC:	struct kdbus_vec by address (sending)
 * @KDBUS_ITEM_PAYLOAD_OFF:	struct kdbus_vec by offset (receiving)
 * @KDBUS_ITEM_PAYLOAD_MEMFD:	struct kdbus_memfd
 * @KDBUS_ITEM_FDS:		int array of file descriptors
 * @KDBUS_ITEM_CANCEL_FD:	one int: an fd that aborts a synchronous call
 *				when it becomes readable
 * @KDBUS_ITEM_BLOOM_PARAMETER:	struct kdbus_bloom_parameter
 * @KDBUS_ITEM_BLOOM_FILTER:	struct kdbus_bloom_filter of a signal
 * @KDBUS_ITEM_BLOOM_MASK:	__u64 array: one mask per generation
 * @KDBUS_ITEM_DST_NAME:	string: the name a message is sent to
 * @KDBUS_ITEM_MAKE_NAME:	string: name of a new bus or endpoint
 * @KDBUS_ITEM_ATTACH_FLAGS_SEND: __u64 KDBUS_ATTACH_* a peer offers
 * @KDBUS_ITEM_ATTACH_FLAGS_RECV: __u64 KDBUS_ATTACH_* a peer wants
 * @KDBUS_ITEM_ID:		__u64 connection id (match on the sender)
 * @KDBUS_ITEM_NAME:		string: a well-known name
 * @KDBUS_ITEM_DST_ID:		__u64 id (match on the destination)
 * @_KDBUS_ITEM_ATTACH_BASE:	first metadata type
 * @KDBUS_ITEM_TIMESTAMP:	struct kdbus_timestamp
 * @KDBUS_ITEM_CREDS:		struct kdbus_creds
 * @KDBUS_ITEM_PIDS:		struct kdbus_pids
 * @KDBUS_ITEM_AUXGROUPS:	__u64 array of group ids
 * @KDBUS_ITEM_OWNED_NAME:	struct kdbus_name
 * @KDBUS_ITEM_TID_COMM:	string
 * @KDBUS_ITEM_PID_COMM:	string
 * @KDBUS_ITEM_EXE:		string
 * @KDBUS_ITEM_CMDLINE:		string
 * @KDBUS_ITEM_CGROUP:		string
 * @KDBUS_ITEM_CAPS:		struct kdbus_caps
 * @KDBUS_ITEM_SECLABEL:	string
 * @KDBUS_ITEM_AUDIT:		struct kdbus_audit
 * @KDBUS_ITEM_CONN_DESCRIPTION: string
 * @_KDBUS_ITEM_POLICY_BASE:	first policy type
 * @KDBUS_ITEM_POLICY_ACCESS:	struct kdbus_policy_access
 * @_KDBUS_ITEM_KERNEL_BASE:	first notification type
 * @KDBUS_ITEM_NAME_ADD:	struct kdbus_notify_name_change
 * @KDBUS_ITEM_NAME_REMOVE:	struct kdbus_notify_name_change
 * @KDBUS_ITEM_NAME_CHANGE:	struct kdbus_notify_name_change
 * @KDBUS_ITEM_ID_ADD:		struct kdbus_notify_id_change
 * @KDBUS_ITEM_ID_REMOVE:	struct kdbus_notify_id_change
 * @KDBUS_ITEM_REPLY_TIMEOUT:	empty: a call was not answered in time
 * @KDBUS_ITEM_REPLY_DEAD:	empty: a call will never be answered
 */
enum kdbus_item_type {
	_KDBUS_ITEM_NULL,
	_KDBUS_ITEM_USER_BASE,
	KDBUS_ITEM_NEGOTIATE	= _KDBUS_ITEM_USER_BASE,
	KDBUS_ITEM_PAYLOAD_VEC,
	KDBUS_ITEM_PAYLOAD_OFF,
	KDBUS_ITEM_PAYLOAD_MEMFD,
	KDBUS_ITEM_FDS,
	KDBUS_ITEM_CANCEL_FD,
	KDBUS_ITEM_BLOOM_PARAMETER,
	KDBUS_ITEM_BLOOM_FILTER,
	KDBUS_ITEM_BLOOM_MASK,
	KDBUS_ITEM_DST_NAME,
	KDBUS_ITEM_MAKE_NAME,
	KDBUS_ITEM_ATTACH_FLAGS_SEND,
	KDBUS_ITEM_ATTACH_FLAGS_RECV,
	KDBUS_ITEM_ID,
	KDBUS_ITEM_NAME,
	KDBUS_ITEM_DST_ID,

	/* type _KDBUS_ITEM_ATTACH_BASE + n is the item of KDBUS_ATTACH bit n */
	_KDBUS_ITEM_ATTACH_BASE	= 0x1000,
	KDBUS_ITEM_TIMESTAMP	= _KDBUS_ITEM_ATTACH_BASE,
	KDBUS_ITEM_CREDS,
	KDBUS_ITEM_PIDS,
	KDBUS_ITEM_AUXGROUPS,
	KDBUS_ITEM_OWNED_NAME,
	KDBUS_ITEM_TID_COMM,
	KDBUS_ITEM_PID_COMM,
	KDBUS_ITEM_EXE,
	KDBUS_ITEM_CMDLINE,
	KDBUS_ITEM_CGROUP,
	KDBUS_ITEM_CAPS,
	KDBUS_ITEM_SECLABEL,
	KDBUS_ITEM_AUDIT,
	KDBUS_ITEM_CONN_DESCRIPTION,

	_KDBUS_ITEM_POLICY_BASE	= 0x2000,
	KDBUS_ITEM_POLICY_ACCESS = _KDBUS_ITEM_POLICY_BASE,

	_KDBUS_ITEM_KERNEL_BASE	= 0x8000,
	KDBUS_ITEM_NAME_ADD	= _KDBUS_ITEM_KERNEL_BASE,
	KDBUS_ITEM_NAME_REMOVE,
	KDBUS_ITEM_NAME_CHANGE,
	KDBUS_ITEM_ID_ADD,
	KDBUS_ITEM_ID_REMOVE,
	KDBUS_ITEM_REPLY_TIMEOUT,
	KDBUS_ITEM_REPLY_DEAD,
};

/**
 * struct kdbus_item - one typed, size-prefixed element of an item list
 * @size:	16 plus the payload length, not counting the padding that
 *		brings the next item to an 8-byte boundary
 * @type:	KDBUS_ITEM_*, which selects the payload below
 * @data:	the payload as bytes
 * @data32:	the payload as 32-bit words
 * @data64:	the payload as 64-bit words
 * @str:	string payloads (names, comms, paths, labels)
 * @id:		ID, DST_ID and the ATTACH_FLAGS_* items
 * @vec:	PAYLOAD_VEC and PAYLOAD_OFF
 * @creds:	CREDS
 * @pids:	PIDS
 * @audit:	AUDIT
 * @caps:	CAPS
 * @timestamp:	TIMESTAMP
 * @name:	OWNED_NAME
 * @bloom_parameter: BLOOM_PARAMETER
 * @bloom_filter: BLOOM_FILTER
 * @memfd:	PAYLOAD_MEMFD
 * @fds:	FDS
 * @name_change: NAME_ADD, NAME_REMOVE and NAME_CHANGE
 * @id_change:	ID_ADD and ID_REMOVE
 * @policy_access: POLICY_ACCESS
 *
 * The union makes sizeof(struct kdbus_item) larger than most items
 * really are; size items from their payload, never with sizeof.
 */
struct kdbus_item {
	__u64 size;
	__u64 type;
	union {
		__DECLARE_FLEX_ARRAY(__u8, data);
		__DECLARE_FLEX_ARRAY(__u32, data32);
		__DECLARE_FLEX_ARRAY(__u64, data64);
		__DECLARE_FLEX_ARRAY(char, str);

		__u64 id;
		struct kdbus_vec vec;
		struct kdbus_creds creds;
		struct kdbus_pids pids;
		struct kdbus_audit audit;
		struct kdbus_caps caps;
		struct kdbus_timestamp timestamp;
		struct kdbus_name name;
		struct kdbus_bloom_parameter bloom_parameter;
		struct kdbus_bloom_filter bloom_filter;
		struct kdbus_memfd memfd;
		__DECLARE_FLEX_ARRAY(int, fds);
		struct kdbus_notify_name_change name_change;
		struct kdbus_notify_id_change id_change;
		struct kdbus_policy_access policy_access;
	};
} __attribute__((__aligned__(8)));

/**
 * enum kdbus_msg_flags - what kind of message this is
 * @KDBUS_MSG_EXPECT_REPLY:	a method call; the receiver owes a reply
 *				before the deadline in timeout_ns
 * @KDBUS_MSG_NO_AUTO_START:	if the destination name only has an
 *				activator, fail rather than queue there
 * @KDBUS_MSG_SIGNAL:		a signal, delivered according to the
 *				receivers' match rules
 */
enum kdbus_msg_flags {
	KDBUS_MSG_EXPECT_REPLY	= 1ULL << 0,
	KDBUS_MSG_NO_AUTO_START	= 1ULL << 1,
	KDBUS_MSG_SIGNAL	= 1ULL << 2,
};

/**
 * enum kdbus_payload_type - how the payload of a message is encoded
 * @KDBUS_PAYLOAD_KERNEL:	notification from the kernel; refused when
 *				userspace sends it
 * @KDBUS_PAYLOAD_DBUS:		D-Bus marshalling ("DBusDBus" in ASCII)
 */
enum kdbus_payload_type {
	KDBUS_PAYLOAD_KERNEL,
	KDBUS_PAYLOAD_DBUS	= 0x4442757344427573ULL,
};

/**
 * struct kdbus_msg - a message, as sent and as received
 * @size:	bytes of the header and its items (received: also the
 *		metadata items, but not the payload that follows)
 * @flags:	KDBUS_MSG_*
 * @priority:	queueing priority; lower values are received first by a
 *		receiver that asks for priorities
 * @dst_id:	receiving connection, KDBUS_DST_ID_NAME to address the
 *		DST_NAME item, or KDBUS_DST_ID_BROADCAST for a signal
 * @src_id:	sending connection (0 for the kernel); filled in by the
 *		kernel, a sender may only pass 0 or its own id
 * @payload_type:	KDBUS_PAYLOAD_*
 * @cookie:	the sender's number for this message
 * @timeout_ns:	for calls: absolute CLOCK_MONOTONIC deadline of the reply
 * @cookie_reply:	for replies: the cookie of the call being answered
 * @items:	payload, fds, destination name, bloom filter; received
 *		messages also carry metadata items here
 */
struct kdbus_msg {
	__u64 size;
	__u64 flags;
	__s64 priority;
	__u64 dst_id;
	__u64 src_id;
	__u64 payload_type;
	__u64 cookie;
	union {
		__u64 timeout_ns;
		__u64 cookie_reply;
	};
	struct kdbus_item items[];
} __attribute__((__aligned__(8)));

/**
 * struct kdbus_msg_info - where a delivered message lies in the pool
 * @offset:	pool offset of the message; release it with KDBUS_CMD_FREE
 * @msg_size:	bytes of the whole slice, payload included
 * @return_flags:	KDBUS_RECV_RETURN_* about this message
 */
struct kdbus_msg_info {
	__u64 offset;
	__u64 msg_size;
	__u64 return_flags;
} __attribute__((__aligned__(8)));

/**
 * enum kdbus_send_flags - how KDBUS_CMD_SEND behaves
 * @KDBUS_SEND_SYNC_REPLY:	block until the call is answered and return
 *				the reply in kdbus_cmd_send.reply
 */
enum kdbus_send_flags {
	KDBUS_SEND_SYNC_REPLY		= 1ULL << 0,
};

/**
 * struct kdbus_cmd_send - argument of KDBUS_CMD_SEND
 * @size:	bytes of this struct and its items
 * @flags:	KDBUS_SEND_*
 * @return_flags:	set by the kernel
 * @msg_address:	user address of the struct kdbus_msg to send
 * @reply:	the reply to a synchronous call, written by the kernel
 * @items:	command items, such as CANCEL_FD
 */
struct kdbus_cmd_send {
	__u64 size;
	__u64 flags;
	__u64 return_flags;
	__u64 msg_address;
	struct kdbus_msg_info reply;
	struct kdbus_item items[];
} __attribute__((__aligned__(8)));

/**
 * enum kdbus_recv_flags - how KDBUS_CMD_RECV picks and takes a message
 * @KDBUS_RECV_PEEK:		report the next message but leave it queued
 * @KDBUS_RECV_DROP:		discard the next message without reporting it
 * @KDBUS_RECV_USE_PRIORITY:	take the message with the lowest priority
 *				value, if it is not above kdbus_cmd_recv.priority
 */
enum kdbus_recv_flags {
	KDBUS_RECV_PEEK		= 1ULL << 0,
	KDBUS_RECV_DROP		= 1ULL << 1,
	KDBUS_RECV_USE_PRIORITY	= 1ULL << 2,
};

/**
 * enum kdbus_recv_return_flags - what KDBUS_CMD_RECV has to report
 * @KDBUS_RECV_RETURN_INCOMPLETE_FDS:	some passed descriptors could not
 *					be installed and read -1
 * @KDBUS_RECV_RETURN_DROPPED_MSGS:	messages were lost since the last
 *					receive; see dropped_msgs
 */
enum kdbus_recv_return_flags {
	KDBUS_RECV_RETURN_INCOMPLETE_FDS	= 1ULL << 0,
	KDBUS_RECV_RETURN_DROPPED_MSGS		= 1ULL << 1,
};

/**
 * struct kdbus_cmd_recv - argument of KDBUS_CMD_RECV
 * @size:	bytes of this struct and its items
 * @flags:	KDBUS_RECV_*
 * @return_flags:	KDBUS_RECV_RETURN_*, set by the kernel
 * @priority:	with KDBUS_RECV_USE_PRIORITY, the highest priority value
 *		that may be taken
 * @dropped_msgs:	how many messages were lost, when
 *			KDBUS_RECV_RETURN_DROPPED_MSGS is set
 * @msg:	the received message, written by the kernel
 * @items:	command items (none defined)
 */
struct kdbus_cmd_recv {
	__u64 size;
	__u64 flags;
	__u64 return_flags;
	__s64 priority;
	__u64 dropped_msgs;
	struct kdbus_msg_info msg;
	struct kdbus_item items[];
} __attribute__((__aligned__(8)));

/**
 * struct kdbus_cmd_free - argument of KDBUS_CMD_FREE
 * @size:	bytes of this struct and its items
 * @flags:	none defined
 * @return_flags:	set by the kernel
 * @offset:	a pool offset some command returned
 * @items:	command items (none defined)
 */
struct kdbus_cmd_free {
	__u64 size;
	__u64 flags;
	__u64 return_flags;
	__u64 offset;
	struct kdbus_item items[];
} __attribute__((__aligned__(8)));

/**
 * enum kdbus_hello_flags - what kind of connection HELLO creates
 * @KDBUS_HELLO_ACCEPT_FD:	file descriptors may be passed to it
 * @KDBUS_HELLO_ACTIVATOR:	holds messages for a well-known name until
 *				a real owner claims it
 * @KDBUS_HELLO_POLICY_HOLDER:	only uploads policy for a name
 * @KDBUS_HELLO_MONITOR:	receives a copy of all bus traffic
 */
enum kdbus_hello_flags {
	KDBUS_HELLO_ACCEPT_FD		=  1ULL <<  0,
	KDBUS_HELLO_ACTIVATOR		=  1ULL <<  1,
	KDBUS_HELLO_POLICY_HOLDER	=  1ULL <<  2,
	KDBUS_HELLO_MONITOR		=  1ULL <<  3,
};

/**
 * struct kdbus_cmd_hello - argument of KDBUS_CMD_HELLO
 * @size:	bytes of this struct and its items
 * @flags:	KDBUS_HELLO_*
 * @return_flags:	set by the kernel
 * @attach_flags_send:	KDBUS_ATTACH_* the new connection lets others see
 * @attach_flags_recv:	KDBUS_ATTACH_* it wants on messages it receives
 * @bus_flags:	output: the flags the bus was created with
 * @id:		output: the id of the new connection
 * @pool_size:	size of its receive pool, a multiple of the page size
 * @offset:	output: pool offset of a slice of items about the bus
 * @items_size:	output: bytes of that slice
 * @id128:	output: the bus' 128-bit identifier
 * @items:	name, policy, description and faked metadata items
 */
struct kdbus_cmd_hello {
	__u64 size;
	__u64 flags;
	__u64 return_flags;
	__u64 attach_flags_send;
	__u64 attach_flags_recv;
	__u64 bus_flags;
	__u64 id;
	__u64 pool_size;
	__u64 offset;
	__u64 items_size;
	__u8 id128[16];
	struct kdbus_item items[];
} __attribute__((__aligned__(8)));

/**
 * struct kdbus_info - one record of CONN_INFO, BUS_CREATOR_INFO or LIST
 * @size:	bytes of the record and its items, padded to 8
 * @id:		id of the connection or bus described
 * @flags:	its creation flags (KDBUS_HELLO_* or KDBUS_MAKE_*)
 * @items:	metadata and names
 */
struct kdbus_info {
	__u64 size;
	__u64 id;
	__u64 flags;
	struct kdbus_item items[];
} __attribute__((__aligned__(8)));

/**
 * enum kdbus_list_flags - which records KDBUS_CMD_LIST returns
 * @KDBUS_LIST_UNIQUE:		a record for each connection not otherwise
 *				listed
 * @KDBUS_LIST_NAMES:		primary owners of well-known names
 * @KDBUS_LIST_ACTIVATORS:	activators and their names
 * @KDBUS_LIST_QUEUED:		owners waiting in line for a name
 */
enum kdbus_list_flags {
	KDBUS_LIST_UNIQUE		= 1ULL <<  0,
	KDBUS_LIST_NAMES		= 1ULL <<  1,
	KDBUS_LIST_ACTIVATORS		= 1ULL <<  2,
	KDBUS_LIST_QUEUED		= 1ULL <<  3,
};

/**
 * struct kdbus_cmd_list - argument of KDBUS_CMD_LIST
 * @size:	bytes of this struct and its items
 * @flags:	KDBUS_LIST_*
 * @return_flags:	set by the kernel
 * @offset:	output: pool offset of the kdbus_info records; release
 *		them with KDBUS_CMD_FREE
 * @list_size:	output: bytes of all records together
 * @items:	command items (none defined)
 */
struct kdbus_cmd_list {
	__u64 size;
	__u64 flags;
	__u64 return_flags;
	__u64 offset;
	__u64 list_size;
	struct kdbus_item items[];
} __attribute__((__aligned__(8)));

/**
 * struct kdbus_cmd_info - argument of CONN_INFO and BUS_CREATOR_INFO
 * @size:	bytes of this struct and its items
 * @flags:	none defined
 * @return_flags:	set by the kernel
 * @id:		CONN_INFO: the connection to describe; 0 to look it up
 *		by the NAME item instead
 * @attach_flags:	KDBUS_ATTACH_* wanted in the answer
 * @offset:	output: pool offset of the kdbus_info record; release it
 *		with KDBUS_CMD_FREE
 * @info_size:	output: bytes of the record
 * @items:	CONN_INFO: an optional NAME item
 */
struct kdbus_cmd_info {
	__u64 size;
	__u64 flags;
	__u64 return_flags;
	__u64 id;
	__u64 attach_flags;
	__u64 offset;
	__u64 info_size;
	struct kdbus_item items[];
} __attribute__((__aligned__(8)));

/**
 * enum kdbus_cmd_match_flags - how KDBUS_CMD_MATCH_ADD behaves
 * @KDBUS_MATCH_REPLACE:	first drop the rules that carry the same cookie
 */
enum kdbus_cmd_match_flags {
	KDBUS_MATCH_REPLACE	= 1ULL <<  0,
};

/**
 * struct kdbus_cmd_match - argument of MATCH_ADD and MATCH_REMOVE
 * @size:	bytes of this struct and its items
 * @flags:	KDBUS_MATCH_*
 * @return_flags:	set by the kernel
 * @cookie:	tag of the rule, chosen by userspace; MATCH_REMOVE drops
 *		every rule with it
 * @items:	the conditions of the rule, all of which must hold
 */
struct kdbus_cmd_match {
	__u64 size;
	__u64 flags;
	__u64 return_flags;
	__u64 cookie;
	struct kdbus_item items[];
} __attribute__((__aligned__(8)));

/**
 * enum kdbus_make_flags - who may open a new bus or endpoint
 * @KDBUS_MAKE_ACCESS_GROUP:	the creator's group, too
 * @KDBUS_MAKE_ACCESS_WORLD:	everyone
 */
enum kdbus_make_flags {
	KDBUS_MAKE_ACCESS_GROUP		= 1ULL <<  0,
	KDBUS_MAKE_ACCESS_WORLD		= 1ULL <<  1,
};

/**
 * enum kdbus_name_flags - requests and states of well-known name owners
 * @KDBUS_NAME_REPLACE_EXISTING:	take the name from an owner that
 *					allows it
 * @KDBUS_NAME_ALLOW_REPLACEMENT:	let others take the name away
 * @KDBUS_NAME_QUEUE:			wait in line while the name is taken
 * @KDBUS_NAME_IN_QUEUE:		state: waiting in line
 * @KDBUS_NAME_ACTIVATOR:		state: held by an activator
 * @KDBUS_NAME_PRIMARY:			state: the current owner
 * @KDBUS_NAME_ACQUIRED:		state: this very call got or queued it
 */
enum kdbus_name_flags {
	KDBUS_NAME_REPLACE_EXISTING	= 1ULL <<  0,
	KDBUS_NAME_ALLOW_REPLACEMENT	= 1ULL <<  1,
	KDBUS_NAME_QUEUE		= 1ULL <<  2,
	KDBUS_NAME_IN_QUEUE		= 1ULL <<  3,
	KDBUS_NAME_ACTIVATOR		= 1ULL <<  4,
	KDBUS_NAME_PRIMARY		= 1ULL <<  5,
	KDBUS_NAME_ACQUIRED		= 1ULL <<  6,
};

/**
 * struct kdbus_cmd - argument of the commands that need no other field
 * @size:	bytes of this struct and its items
 * @flags:	command specific
 * @return_flags:	set by the kernel
 * @items:	command specific
 */
struct kdbus_cmd {
	__u64 size;
	__u64 flags;
	__u64 return_flags;
	struct kdbus_item items[];
} __attribute__((__aligned__(8)));

/**
 * enum kdbus_ioctl_type - the ioctl commands
 * @KDBUS_CMD_BUS_MAKE:		on a fresh control file handle: create a bus,
 *				which lives until that handle is closed
 * @KDBUS_CMD_ENDPOINT_MAKE:	on a fresh handle of a bus' default endpoint,
 *				by its owner: create a custom endpoint, which
 *				lives until that handle is closed
 * @KDBUS_CMD_ENDPOINT_UPDATE:	replace the policy of that custom endpoint
 * @KDBUS_CMD_HELLO:		on a fresh endpoint handle: connect to the bus
 * @KDBUS_CMD_UPDATE:		change a connection's metadata masks or, for a
 *				policy holder, its policy
 * @KDBUS_CMD_BYEBYE:		disconnect, if nothing is queued
 * @KDBUS_CMD_FREE:		give a slice of the pool back
 * @KDBUS_CMD_CONN_INFO:	describe a connection, from what was recorded
 *				when it connected
 * @KDBUS_CMD_BUS_CREATOR_INFO:	describe the bus and its creator
 * @KDBUS_CMD_LIST:		list connections and their names
 * @KDBUS_CMD_SEND:		send a message
 * @KDBUS_CMD_RECV:		take the next message from the queue
 * @KDBUS_CMD_NAME_ACQUIRE:	claim or queue for a well-known name
 * @KDBUS_CMD_NAME_RELEASE:	give a well-known name up
 * @KDBUS_CMD_MATCH_ADD:	subscribe to signals and notifications
 * @KDBUS_CMD_MATCH_REMOVE:	drop subscriptions by cookie
 */
enum kdbus_ioctl_type {
	/* handles that made a bus (0x00-0x0f) */
	KDBUS_CMD_BUS_MAKE =		_IOW(KDBUS_IOCTL_MAGIC, 0x00,
					     struct kdbus_cmd),

	/* handles that made an endpoint (0x10-0x1f) */
	KDBUS_CMD_ENDPOINT_MAKE =	_IOW(KDBUS_IOCTL_MAGIC, 0x10,
					     struct kdbus_cmd),
	KDBUS_CMD_ENDPOINT_UPDATE =	_IOW(KDBUS_IOCTL_MAGIC, 0x11,
					     struct kdbus_cmd),

	/* connections (0x80-0xff) */
	KDBUS_CMD_HELLO =		_IOWR(KDBUS_IOCTL_MAGIC, 0x80,
					      struct kdbus_cmd_hello),
	KDBUS_CMD_UPDATE =		_IOW(KDBUS_IOCTL_MAGIC, 0x81,
					     struct kdbus_cmd),
	KDBUS_CMD_BYEBYE =		_IOW(KDBUS_IOCTL_MAGIC, 0x82,
					     struct kdbus_cmd),
	KDBUS_CMD_FREE =		_IOW(KDBUS_IOCTL_MAGIC, 0x83,
					     struct kdbus_cmd_free),
	KDBUS_CMD_CONN_INFO =		_IOR(KDBUS_IOCTL_MAGIC, 0x84,
					     struct kdbus_cmd_info),
	KDBUS_CMD_BUS_CREATOR_INFO =	_IOR(KDBUS_IOCTL_MAGIC, 0x85,
					     struct kdbus_cmd_info),
	KDBUS_CMD_LIST =		_IOR(KDBUS_IOCTL_MAGIC, 0x86,
					     struct kdbus_cmd_list),

	KDBUS_CMD_SEND =		_IOW(KDBUS_IOCTL_MAGIC, 0x90,
					     struct kdbus_cmd_send),
	KDBUS_CMD_RECV =		_IOR(KDBUS_IOCTL_MAGIC, 0x91,
					     struct kdbus_cmd_recv),

	KDBUS_CMD_NAME_ACQUIRE =	_IOW(KDBUS_IOCTL_MAGIC, 0xa0,
					     struct kdbus_cmd),
	KDBUS_CMD_NAME_RELEASE =	_IOW(KDBUS_IOCTL_MAGIC, 0xa1,
					     struct kdbus_cmd),

	KDBUS_CMD_MATCH_ADD =		_IOW(KDBUS_IOCTL_MAGIC, 0xb0,
					     struct kdbus_cmd_match),
	KDBUS_CMD_MATCH_REMOVE =	_IOW(KDBUS_IOCTL_MAGIC, 0xb1,
					     struct kdbus_cmd_match),
};

#endif /* _UAPI_KDBUS_H_ */
