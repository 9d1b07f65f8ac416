/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The numbers userspace can run into: sizes, counts and quotas of the ABI.
 */
#ifndef KD_LIMITS_H
#define KD_LIMITS_H

#include <linux/sizes.h>

#define KD_CMD_MAX		SZ_32K	/* an ioctl argument, items included */
#define KD_CMD_ONSTACK		256	/* arguments up to this size skip kmalloc */
#define KD_VEC_MAX		SZ_2M	/* inline payload of one message */
#define KD_MEMFDS_MAX		16	/* PAYLOAD_MEMFD items in one message */
#define KD_FDS_MAX		16	/* fds per message; in flight per user */
#define KD_BLOOM_MIN		8	/* bloom filter bytes */
#define KD_BLOOM_MAX		SZ_4K
#define KD_NAME_MAX		255	/* well-known names */
#define KD_SYSNAME_MAX		63	/* bus, endpoint and description names */
#define KD_MATCHES_MAX		256	/* match entries of a connection */
#define KD_QUEUED_MAX		256	/* messages queued per sender user */
#define KD_NAMES_MAX		256	/* owned and queued names of a connection */
#define KD_PENDING_MAX		128	/* outstanding reply slots of a caller */
#define KD_USER_CONNS_MAX	1024	/* connections of one user in a domain */
#define KD_USER_BUSES_MAX	16	/* buses of one user in a domain */
#define KD_CMDLINE_MAX		SZ_4K	/* the CMDLINE item is cut here */

#endif /* KD_LIMITS_H */
