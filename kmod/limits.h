/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Limits and quotas of the kdbus ABI (master revision).
 */

#ifndef __KDBUS_LIMITS_H
#define __KDBUS_LIMITS_H

#include <linux/sizes.h>

/* maximum size of an ioctl argument, items included (also caps kdbus_msg) */
#define KDBUS_CMD_MAX_SIZE		SZ_32K

/* maximum number of inline payload bytes of a message (PAYLOAD_VEC) */
#define KDBUS_MSG_MAX_PAYLOAD_VEC_SIZE	SZ_2M

/* maximum number of PAYLOAD_MEMFD items per message */
#define KDBUS_MSG_MAX_MEMFD_ITEMS	16

/* maximum fds per message, and in flight per sending user per receiver */
#define KDBUS_CONN_MAX_FDS_PER_USER	16

/* bloom filter size limits of a bus (bytes) */
#define KDBUS_BUS_BLOOM_MIN_SIZE	8
#define KDBUS_BUS_BLOOM_MAX_SIZE	SZ_4K

/* maximum length of a well-known name */
#define KDBUS_NAME_MAX_LEN		255

/* maximum length of bus, endpoint and connection description names */
#define KDBUS_SYSNAME_MAX_LEN		63

/* maximum number of match entries per connection */
#define KDBUS_MATCH_MAX			256

/* maximum number of queued messages per sending user per receiver */
#define KDBUS_CONN_MAX_MSGS		256

/* maximum number of owned and queued names per connection */
#define KDBUS_CONN_MAX_NAMES		256

/* maximum number of outstanding reply slots per caller */
#define KDBUS_CONN_MAX_REQUESTS_PENDING	128

/* maximum number of connections per user in one domain */
#define KDBUS_USER_MAX_CONN		1024

/* maximum number of buses per user in one domain */
#define KDBUS_USER_MAX_BUSES		16

/*
 * Upper bound of a CMDLINE metadata item: the whole argument vector is
 * delivered (not only argv[0]), truncated to this many bytes.
 */
#define KDBUS_META_CMDLINE_MAX		SZ_4K

#endif
