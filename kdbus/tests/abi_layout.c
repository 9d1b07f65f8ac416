/*
 * Prints the layout of the kdbus uapi header as the C compiler sees it;
 * tests/abi_layout.rs compares the output with the ABI specification.
 */
#include <stddef.h>
#include <stdio.h>
#include <linux/kdbus.h>

#define SIZE(s)		printf("size %s %zu\n", #s, sizeof(struct s))
#define OFF(s, f)	printf("offset %s.%s %zu\n", #s, #f, offsetof(struct s, f))
#define CONST(c)	printf("const %s 0x%llx\n", #c, (unsigned long long)(c))

int main(void)
{
	SIZE(kdbus_notify_id_change); OFF(kdbus_notify_id_change, id); OFF(kdbus_notify_id_change, flags);
	SIZE(kdbus_notify_name_change); OFF(kdbus_notify_name_change, old_id);
	OFF(kdbus_notify_name_change, new_id); OFF(kdbus_notify_name_change, name);
	SIZE(kdbus_creds); OFF(kdbus_creds, uid); OFF(kdbus_creds, euid); OFF(kdbus_creds, suid);
	OFF(kdbus_creds, fsuid); OFF(kdbus_creds, gid); OFF(kdbus_creds, egid);
	OFF(kdbus_creds, sgid); OFF(kdbus_creds, fsgid);
	SIZE(kdbus_pids); OFF(kdbus_pids, pid); OFF(kdbus_pids, tid); OFF(kdbus_pids, ppid);
	SIZE(kdbus_caps); OFF(kdbus_caps, last_cap); OFF(kdbus_caps, caps);
	SIZE(kdbus_audit); OFF(kdbus_audit, sessionid); OFF(kdbus_audit, loginuid);
	SIZE(kdbus_timestamp); OFF(kdbus_timestamp, seqnum); OFF(kdbus_timestamp, monotonic_ns);
	OFF(kdbus_timestamp, realtime_ns);
	SIZE(kdbus_vec); OFF(kdbus_vec, size); OFF(kdbus_vec, address); OFF(kdbus_vec, offset);
	SIZE(kdbus_bloom_parameter); OFF(kdbus_bloom_parameter, size); OFF(kdbus_bloom_parameter, n_hash);
	SIZE(kdbus_bloom_filter); OFF(kdbus_bloom_filter, generation); OFF(kdbus_bloom_filter, data);
	SIZE(kdbus_memfd); OFF(kdbus_memfd, start); OFF(kdbus_memfd, size); OFF(kdbus_memfd, fd);
	OFF(kdbus_memfd, __pad);
	SIZE(kdbus_name); OFF(kdbus_name, flags); OFF(kdbus_name, name);
	SIZE(kdbus_policy_access); OFF(kdbus_policy_access, type); OFF(kdbus_policy_access, access);
	OFF(kdbus_policy_access, id);
	SIZE(kdbus_item); OFF(kdbus_item, size); OFF(kdbus_item, type); OFF(kdbus_item, data);
	SIZE(kdbus_msg); OFF(kdbus_msg, size); OFF(kdbus_msg, flags); OFF(kdbus_msg, priority);
	OFF(kdbus_msg, dst_id); OFF(kdbus_msg, src_id); OFF(kdbus_msg, payload_type);
	OFF(kdbus_msg, cookie); OFF(kdbus_msg, timeout_ns); OFF(kdbus_msg, cookie_reply);
	OFF(kdbus_msg, items);
	SIZE(kdbus_msg_info); OFF(kdbus_msg_info, offset); OFF(kdbus_msg_info, msg_size);
	OFF(kdbus_msg_info, return_flags);
	SIZE(kdbus_cmd_send); OFF(kdbus_cmd_send, size); OFF(kdbus_cmd_send, flags);
	OFF(kdbus_cmd_send, return_flags); OFF(kdbus_cmd_send, msg_address);
	OFF(kdbus_cmd_send, reply); OFF(kdbus_cmd_send, items);
	SIZE(kdbus_cmd_recv); OFF(kdbus_cmd_recv, size); OFF(kdbus_cmd_recv, flags);
	OFF(kdbus_cmd_recv, return_flags); OFF(kdbus_cmd_recv, priority);
	OFF(kdbus_cmd_recv, dropped_msgs); OFF(kdbus_cmd_recv, msg); OFF(kdbus_cmd_recv, items);
	SIZE(kdbus_cmd_free); OFF(kdbus_cmd_free, size); OFF(kdbus_cmd_free, flags);
	OFF(kdbus_cmd_free, return_flags); OFF(kdbus_cmd_free, offset); OFF(kdbus_cmd_free, items);
	SIZE(kdbus_cmd_hello); OFF(kdbus_cmd_hello, size); OFF(kdbus_cmd_hello, flags);
	OFF(kdbus_cmd_hello, return_flags); OFF(kdbus_cmd_hello, attach_flags_send);
	OFF(kdbus_cmd_hello, attach_flags_recv); OFF(kdbus_cmd_hello, bus_flags);
	OFF(kdbus_cmd_hello, id); OFF(kdbus_cmd_hello, pool_size); OFF(kdbus_cmd_hello, offset);
	OFF(kdbus_cmd_hello, items_size); OFF(kdbus_cmd_hello, id128); OFF(kdbus_cmd_hello, items);
	SIZE(kdbus_info); OFF(kdbus_info, size); OFF(kdbus_info, id); OFF(kdbus_info, flags);
	OFF(kdbus_info, items);
	SIZE(kdbus_cmd_list); OFF(kdbus_cmd_list, size); OFF(kdbus_cmd_list, flags);
	OFF(kdbus_cmd_list, return_flags); OFF(kdbus_cmd_list, offset);
	OFF(kdbus_cmd_list, list_size); OFF(kdbus_cmd_list, items);
	SIZE(kdbus_cmd_info); OFF(kdbus_cmd_info, size); OFF(kdbus_cmd_info, flags);
	OFF(kdbus_cmd_info, return_flags); OFF(kdbus_cmd_info, id); OFF(kdbus_cmd_info, attach_flags);
	OFF(kdbus_cmd_info, offset); OFF(kdbus_cmd_info, info_size); OFF(kdbus_cmd_info, items);
	SIZE(kdbus_cmd_match); OFF(kdbus_cmd_match, size); OFF(kdbus_cmd_match, flags);
	OFF(kdbus_cmd_match, return_flags); OFF(kdbus_cmd_match, cookie); OFF(kdbus_cmd_match, items);
	SIZE(kdbus_cmd); OFF(kdbus_cmd, size); OFF(kdbus_cmd, flags); OFF(kdbus_cmd, return_flags);
	OFF(kdbus_cmd, items);

	CONST(KDBUS_IOCTL_MAGIC); CONST(KDBUS_SRC_ID_KERNEL); CONST(KDBUS_DST_ID_NAME);
	CONST(KDBUS_MATCH_ID_ANY); CONST(KDBUS_DST_ID_BROADCAST); CONST(KDBUS_FLAG_NEGOTIATE);
	CONST(KDBUS_PAYLOAD_KERNEL); CONST(KDBUS_PAYLOAD_DBUS);

	CONST(_KDBUS_ITEM_NULL); CONST(_KDBUS_ITEM_USER_BASE); CONST(KDBUS_ITEM_NEGOTIATE);
	CONST(KDBUS_ITEM_PAYLOAD_VEC); CONST(KDBUS_ITEM_PAYLOAD_OFF); CONST(KDBUS_ITEM_PAYLOAD_MEMFD);
	CONST(KDBUS_ITEM_FDS); CONST(KDBUS_ITEM_CANCEL_FD); CONST(KDBUS_ITEM_BLOOM_PARAMETER);
	CONST(KDBUS_ITEM_BLOOM_FILTER); CONST(KDBUS_ITEM_BLOOM_MASK); CONST(KDBUS_ITEM_DST_NAME);
	CONST(KDBUS_ITEM_MAKE_NAME); CONST(KDBUS_ITEM_ATTACH_FLAGS_SEND);
	CONST(KDBUS_ITEM_ATTACH_FLAGS_RECV); CONST(KDBUS_ITEM_ID); CONST(KDBUS_ITEM_NAME);
	CONST(KDBUS_ITEM_DST_ID);
	CONST(_KDBUS_ITEM_ATTACH_BASE); CONST(KDBUS_ITEM_TIMESTAMP); CONST(KDBUS_ITEM_CREDS);
	CONST(KDBUS_ITEM_PIDS); CONST(KDBUS_ITEM_AUXGROUPS); CONST(KDBUS_ITEM_OWNED_NAME);
	CONST(KDBUS_ITEM_TID_COMM); CONST(KDBUS_ITEM_PID_COMM); CONST(KDBUS_ITEM_EXE);
	CONST(KDBUS_ITEM_CMDLINE); CONST(KDBUS_ITEM_CGROUP); CONST(KDBUS_ITEM_CAPS);
	CONST(KDBUS_ITEM_SECLABEL); CONST(KDBUS_ITEM_AUDIT); CONST(KDBUS_ITEM_CONN_DESCRIPTION);
	CONST(_KDBUS_ITEM_POLICY_BASE); CONST(KDBUS_ITEM_POLICY_ACCESS);
	CONST(_KDBUS_ITEM_KERNEL_BASE); CONST(KDBUS_ITEM_NAME_ADD); CONST(KDBUS_ITEM_NAME_REMOVE);
	CONST(KDBUS_ITEM_NAME_CHANGE); CONST(KDBUS_ITEM_ID_ADD); CONST(KDBUS_ITEM_ID_REMOVE);
	CONST(KDBUS_ITEM_REPLY_TIMEOUT); CONST(KDBUS_ITEM_REPLY_DEAD);

	CONST(KDBUS_ATTACH_TIMESTAMP); CONST(KDBUS_ATTACH_CREDS); CONST(KDBUS_ATTACH_PIDS);
	CONST(KDBUS_ATTACH_AUXGROUPS); CONST(KDBUS_ATTACH_NAMES); CONST(KDBUS_ATTACH_TID_COMM);
	CONST(KDBUS_ATTACH_PID_COMM); CONST(KDBUS_ATTACH_EXE); CONST(KDBUS_ATTACH_CMDLINE);
	CONST(KDBUS_ATTACH_CGROUP); CONST(KDBUS_ATTACH_CAPS); CONST(KDBUS_ATTACH_SECLABEL);
	CONST(KDBUS_ATTACH_AUDIT); CONST(KDBUS_ATTACH_CONN_DESCRIPTION); CONST(_KDBUS_ATTACH_ALL);
	CONST(_KDBUS_ATTACH_ANY);

	CONST(KDBUS_HELLO_ACCEPT_FD); CONST(KDBUS_HELLO_ACTIVATOR); CONST(KDBUS_HELLO_POLICY_HOLDER);
	CONST(KDBUS_HELLO_MONITOR);
	CONST(KDBUS_MSG_EXPECT_REPLY); CONST(KDBUS_MSG_NO_AUTO_START); CONST(KDBUS_MSG_SIGNAL);
	CONST(KDBUS_SEND_SYNC_REPLY);
	CONST(KDBUS_RECV_PEEK); CONST(KDBUS_RECV_DROP); CONST(KDBUS_RECV_USE_PRIORITY);
	CONST(KDBUS_RECV_RETURN_INCOMPLETE_FDS); CONST(KDBUS_RECV_RETURN_DROPPED_MSGS);
	CONST(KDBUS_NAME_REPLACE_EXISTING); CONST(KDBUS_NAME_ALLOW_REPLACEMENT);
	CONST(KDBUS_NAME_QUEUE); CONST(KDBUS_NAME_IN_QUEUE); CONST(KDBUS_NAME_ACTIVATOR);
	CONST(KDBUS_NAME_PRIMARY); CONST(KDBUS_NAME_ACQUIRED);
	CONST(KDBUS_LIST_UNIQUE); CONST(KDBUS_LIST_NAMES); CONST(KDBUS_LIST_ACTIVATORS);
	CONST(KDBUS_LIST_QUEUED);
	CONST(KDBUS_MATCH_REPLACE);
	CONST(KDBUS_MAKE_ACCESS_GROUP); CONST(KDBUS_MAKE_ACCESS_WORLD);
	CONST(_KDBUS_POLICY_ACCESS_NULL); CONST(KDBUS_POLICY_ACCESS_USER);
	CONST(KDBUS_POLICY_ACCESS_GROUP); CONST(KDBUS_POLICY_ACCESS_WORLD);
	CONST(KDBUS_POLICY_SEE); CONST(KDBUS_POLICY_TALK); CONST(KDBUS_POLICY_OWN);

	CONST(KDBUS_CMD_BUS_MAKE); CONST(KDBUS_CMD_ENDPOINT_MAKE); CONST(KDBUS_CMD_ENDPOINT_UPDATE);
	CONST(KDBUS_CMD_HELLO); CONST(KDBUS_CMD_UPDATE); CONST(KDBUS_CMD_BYEBYE); CONST(KDBUS_CMD_FREE);
	CONST(KDBUS_CMD_CONN_INFO); CONST(KDBUS_CMD_BUS_CREATOR_INFO); CONST(KDBUS_CMD_LIST);
	CONST(KDBUS_CMD_SEND); CONST(KDBUS_CMD_RECV); CONST(KDBUS_CMD_NAME_ACQUIRE);
	CONST(KDBUS_CMD_NAME_RELEASE); CONST(KDBUS_CMD_MATCH_ADD); CONST(KDBUS_CMD_MATCH_REMOVE);
	return 0;
}
