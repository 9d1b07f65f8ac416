// SPDX-License-Identifier: GPL-2.0
/*
 * Receive pools.
 *
 * A pool is a plain array of page pointers, filled on first touch: by the
 * kernel when it writes a slice, or by a fault of the receiver's
 * read-only mapping. Racing first touches agree through cmpxchg(), so
 * page lookup needs no lock. The pool is reference counted because a
 * mapping may outlive the connection that owns the pool.
 *
 * The byte range is cut into chunks, each either free (a hole) or busy (a
 * slice). All chunks sit on one list in address order, so freeing can
 * merge with both neighbours in O(1); holes are also in a tree by
 * (length, offset) for best fit, slices in a tree by offset for FREE.
 * Splitting a hole needs a second chunk; the pool keeps one spare so the
 * steady state of a busy connection allocates nothing. A spinlock guards
 * the chunks; pages are never allocated under it.
 */

#include <linux/kref.h>
#include <linux/highmem.h>
#include <linux/list.h>
#include <linux/mm.h>
#include <linux/rbtree.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/uaccess.h>
#include <linux/xarray.h>

#include "pool.h"

struct kd_pool {
	struct kref kref;
	size_t size;
	pgoff_t n_pages;
	struct xarray pages;		/* by index; absent until touched */

	spinlock_t lock;		/* everything below */
	struct list_head chunks;	/* struct kd_slice.link, by offset */
	struct rb_root holes;		/* free chunks by (len, off) */
	struct rb_root busy;		/* slices by off */
	size_t accounted;		/* bytes of accounted slices */
	struct kd_slice *spare;		/* an unused chunk, for splits */
};

/* a chunk of a pool: a hole, or a slice while @busy */
struct kd_slice {
	struct list_head link;
	struct rb_node rb;		/* pool->holes or pool->busy */
	struct kd_pool *pool;
	size_t off;
	size_t len;
	bool busy;
	bool accounted;
	bool kernel_ref;
	bool user_ref;
};

/*
 * Created at module load (main.c). A module whose init does not create it
 * still works: chunks then come from kmalloc().
 */
static struct kmem_cache *kd_slice_cache;

/**
 * kd_slice_cache_init() - create the slab cache of pool chunks
 *
 * Return: 0 or -ENOMEM.
 */
int kd_slice_cache_init(void)
{
	kd_slice_cache = KMEM_CACHE(kd_slice, SLAB_ACCOUNT);
	return kd_slice_cache ? 0 : -ENOMEM;
}

/**
 * kd_slice_cache_exit() - destroy the slab cache of pool chunks
 */
void kd_slice_cache_exit(void)
{
	kmem_cache_destroy(kd_slice_cache);
	kd_slice_cache = NULL;
}

static struct kd_slice *kd_chunk_alloc(struct kd_pool *pool)
{
	struct kd_slice *c;

	if (kd_slice_cache)
		c = kmem_cache_zalloc(kd_slice_cache, GFP_KERNEL_ACCOUNT);
	else
		c = kzalloc(sizeof(*c), GFP_KERNEL_ACCOUNT);
	if (!c)
		return NULL;
	kd_obj_new(KD_OBJ_SLICE);
	c->pool = pool;
	return c;
}

static void kd_chunk_free(struct kd_slice *c)
{
	if (kd_slice_cache)
		kmem_cache_free(kd_slice_cache, c);
	else
		kfree(c);
	kd_obj_gone(KD_OBJ_SLICE);
}

/* under pool->lock: a chunk that merged away becomes the spare if needed */
static void kd_chunk_retire(struct kd_pool *pool, struct kd_slice *c)
{
	if (pool->spare) {
		kd_chunk_free(c);
		return;
	}
	c->len = 0;
	pool->spare = c;
}

static inline struct kd_slice *kd_chunk_of(const struct rb_node *n)
{
	return rb_entry(n, struct kd_slice, rb);
}

/* holes by (length, offset) */
static bool kd_hole_less(struct rb_node *a, const struct rb_node *b)
{
	const struct kd_slice *x = kd_chunk_of(a), *y = kd_chunk_of(b);

	return x->len < y->len || (x->len == y->len && x->off < y->off);
}

static void kd_hole_insert(struct kd_pool *pool, struct kd_slice *h)
{
	rb_add(&h->rb, &pool->holes, kd_hole_less);
}

/* the smallest hole of at least @len bytes, the lowest among equals */
static struct kd_slice *kd_hole_best(struct kd_pool *pool, size_t len)
{
	struct rb_node *n = pool->holes.rb_node;
	struct kd_slice *best = NULL;

	while (n) {
		struct kd_slice *h = kd_chunk_of(n);

		if (h->len < len) {
			n = n->rb_right;
		} else {
			best = h;
			n = n->rb_left;
		}
	}
	return best;
}

/* slices by offset */
static bool kd_busy_less(struct rb_node *a, const struct rb_node *b)
{
	return kd_chunk_of(a)->off < kd_chunk_of(b)->off;
}

static int kd_busy_cmp(const void *key, const struct rb_node *n)
{
	u64 off = *(const u64 *)key;
	size_t at = kd_chunk_of(n)->off;

	return off < at ? -1 : off > at;
}

static void kd_busy_insert(struct kd_pool *pool, struct kd_slice *s)
{
	rb_add(&s->rb, &pool->busy, kd_busy_less);
}

static struct kd_slice *kd_busy_find(struct kd_pool *pool, u64 off)
{
	struct rb_node *n = rb_find(&off, &pool->busy, kd_busy_cmp);

	return n ? kd_chunk_of(n) : NULL;
}

/* under pool->lock: both references are gone, @s becomes free space */
static void kd_slice_release(struct kd_pool *pool, struct kd_slice *s)
{
	struct kd_slice *n;

	rb_erase(&s->rb, &pool->busy);
	if (s->accounted)
		pool->accounted -= s->len;
	s->busy = false;

	if (!list_is_first(&s->link, &pool->chunks)) {
		n = list_prev_entry(s, link);
		if (!n->busy) {
			rb_erase(&n->rb, &pool->holes);
			n->len += s->len;
			list_del(&s->link);
			kd_chunk_retire(pool, s);
			s = n;
		}
	}
	if (!list_is_last(&s->link, &pool->chunks)) {
		n = list_next_entry(s, link);
		if (!n->busy) {
			rb_erase(&n->rb, &pool->holes);
			s->len += n->len;
			list_del(&n->link);
			kd_chunk_retire(pool, n);
		}
	}
	kd_hole_insert(pool, s);
}

/**
 * kd_pool_new() - create a receive pool
 * @size:		bytes, a non-zero multiple of PAGE_SIZE
 * @description:	unused; pools have no name of their own
 *
 * Return: the pool with one reference (the connection's), or an ERR_PTR.
 */
struct kd_pool *kd_pool_new(size_t size, const char *description)
{
	struct kd_pool *pool;
	struct kd_slice *all;

	if (!size || !PAGE_ALIGNED(size))
		return ERR_PTR(-EINVAL);

	pool = kzalloc(sizeof(*pool), GFP_KERNEL_ACCOUNT);
	if (!pool)
		return ERR_PTR(-ENOMEM);
	kref_init(&pool->kref);
	spin_lock_init(&pool->lock);
	INIT_LIST_HEAD(&pool->chunks);
	pool->holes = RB_ROOT;
	pool->busy = RB_ROOT;
	pool->size = size;
	pool->n_pages = size >> PAGE_SHIFT;
	/* sparse: a pool of any size costs only the pages it uses */
	xa_init(&pool->pages);
	all = kd_chunk_alloc(pool);
	if (!all) {
		kfree(pool);
		return ERR_PTR(-ENOMEM);
	}
	all->len = size;
	list_add(&all->link, &pool->chunks);
	kd_hole_insert(pool, all);
	return pool;
}

static void kd_pool_release(struct kref *kref)
{
	struct kd_pool *pool = container_of(kref, struct kd_pool, kref);
	struct kd_slice *c, *tmp;
	struct page *page;
	unsigned long i;

	list_for_each_entry_safe(c, tmp, &pool->chunks, link)
		kd_chunk_free(c);
	if (pool->spare)
		kd_chunk_free(pool->spare);
	/* put, not free: a page may still be pinned by someone (GUP) */
	xa_for_each(&pool->pages, i, page)
		put_page(page);
	xa_destroy(&pool->pages);
	kfree(pool);
}

static void kd_pool_put(struct kd_pool *pool)
{
	kref_put(&pool->kref, kd_pool_release);
}

/**
 * kd_pool_destroy() - drop the connection's reference on its pool
 * @pool:	the pool, or NULL
 *
 * Mappings keep the pool (and its pages) until they are unmapped.
 */
void kd_pool_destroy(struct kd_pool *pool)
{
	if (pool)
		kd_pool_put(pool);
}

/**
 * kd_pool_size() - the size of a pool
 * @pool:	the pool
 *
 * Return: its size in bytes; also the offset of "no slice" results.
 */
size_t kd_pool_size(const struct kd_pool *pool)
{
	return pool->size;
}

/**
 * kd_pool_accounted() - bytes in accounted slices
 * @pool:	the pool
 *
 * Only kd_slice_new() raises the count, and accounted slices are made
 * under the receiver's lock, so a caller holding that lock may rely on
 * the value not growing behind its back.
 *
 * Return: the bytes of @pool held by messages of other connections.
 */
size_t kd_pool_accounted(struct kd_pool *pool)
{
	return READ_ONCE(pool->accounted);
}

/*
 * The page at @idx, allocated (zeroed, charged to the current task) if
 * @create. Concurrent creators race with xa_cmpxchg(); the loser frees its
 * page and uses the winner's.
 */
static struct page *kd_pool_page(struct kd_pool *pool, pgoff_t idx,
				 bool create)
{
	struct page *page = xa_load(&pool->pages, idx);
	struct page *old;

	if (page || !create)
		return page;
	page = alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO);
	if (!page)
		return NULL;
	old = xa_cmpxchg(&pool->pages, idx, NULL, page, GFP_KERNEL_ACCOUNT);
	if (old) {
		__free_page(page);
		return xa_is_err(old) ? NULL : old;
	}
	return page;
}

/*
 * The kernel address of pool byte @pos; *@len is cut to what stays in
 * that page. NULL: no memory (@create) or a page never touched (reads
 * as zeros). Pool pages are never highmem (no __GFP_HIGHMEM).
 */
static void *kd_pool_addr(struct kd_pool *pool, size_t pos, size_t *len,
			  bool create)
{
	struct page *page;

	*len = min_t(size_t, *len, PAGE_SIZE - offset_in_page(pos));
	page = kd_pool_page(pool, pos >> PAGE_SHIFT, create);
	return page ? page_address(page) + offset_in_page(pos) : NULL;
}

/**
 * kd_slice_new() - allocate a slice
 * @pool:	the pool
 * @size:	bytes needed; rounded up to a multiple of 8
 * @accounted:	whether the slice counts in kd_pool_accounted()
 *
 * The slice is best fit: the smallest hole that holds it, the lowest
 * such hole among equals. It comes with the kernel reference only.
 *
 * Return: the slice, ERR_PTR(-EXFULL) if no hole is large enough, or
 * ERR_PTR(-ENOMEM).
 */
struct kd_slice *kd_slice_new(struct kd_pool *pool, size_t size,
			      bool accounted)
{
	struct kd_slice *s, *rest, *fresh;
	size_t len;

	if (size > pool->size)
		return ERR_PTR(-EXFULL);
	len = size ? KD_ALIGN8(size) : 8;

	spin_lock(&pool->lock);
	for (;;) {
		s = kd_hole_best(pool, len);
		if (!s) {
			spin_unlock(&pool->lock);
			return ERR_PTR(-EXFULL);
		}
		if (s->len == len || pool->spare)
			break;
		/* a split needs a chunk: get one without the lock, retry */
		spin_unlock(&pool->lock);
		fresh = kd_chunk_alloc(pool);
		if (!fresh)
			return ERR_PTR(-ENOMEM);
		spin_lock(&pool->lock);
		if (pool->spare)
			kd_chunk_free(fresh);
		else
			pool->spare = fresh;
	}

	rb_erase(&s->rb, &pool->holes);
	if (s->len > len) {
		rest = pool->spare;
		pool->spare = NULL;
		rest->off = s->off + len;
		rest->len = s->len - len;
		list_add(&rest->link, &s->link);
		kd_hole_insert(pool, rest);
		s->len = len;
	}
	s->busy = true;
	s->accounted = accounted;
	s->kernel_ref = true;
	s->user_ref = false;
	kd_busy_insert(pool, s);
	if (accounted)
		pool->accounted += len;
	spin_unlock(&pool->lock);
	return s;
}

/**
 * kd_slice_publish() - give the receiver its reference on a slice
 * @slice:	the slice, whose offset is about to be handed out
 *
 * The reference ends with KDBUS_CMD_FREE of the slice's offset.
 * Publishing twice (PEEK, then RECV) is one reference.
 */
void kd_slice_publish(struct kd_slice *slice)
{
	struct kd_pool *pool = slice->pool;

	spin_lock(&pool->lock);
	slice->user_ref = true;
	spin_unlock(&pool->lock);
}

/**
 * kd_slice_drop() - drop the kernel's reference on a slice
 * @slice:	the slice, or NULL
 *
 * The slice is freed unless it is published; @slice must not be used
 * afterwards.
 */
void kd_slice_drop(struct kd_slice *slice)
{
	struct kd_pool *pool;

	if (!slice)
		return;
	pool = slice->pool;
	spin_lock(&pool->lock);
	slice->kernel_ref = false;
	if (!slice->user_ref)
		kd_slice_release(pool, slice);
	spin_unlock(&pool->lock);
}

/**
 * kd_pool_free_offset() - KDBUS_CMD_FREE: drop the receiver's reference
 * @pool:	the pool
 * @offset:	the offset of a published slice, or the pool size
 *
 * Return: 0 (also for the pool size, the "no slice" marker), or -ENXIO
 * if no published slice starts at @offset.
 */
int kd_pool_free_offset(struct kd_pool *pool, u64 offset)
{
	struct kd_slice *s;
	int ret = 0;

	if (offset == pool->size)
		return 0;

	spin_lock(&pool->lock);
	s = kd_busy_find(pool, offset);
	if (!s || !s->user_ref) {
		ret = -ENXIO;
	} else {
		s->user_ref = false;
		if (!s->kernel_ref)
			kd_slice_release(pool, s);
	}
	spin_unlock(&pool->lock);
	return ret;
}

/**
 * kd_slice_offset() - where a slice starts in its pool
 * @slice:	the slice
 *
 * Return: the offset userspace sees.
 */
u64 kd_slice_offset(const struct kd_slice *slice)
{
	return slice->off;
}

/**
 * kd_slice_size() - the usable size of a slice
 * @slice:	the slice
 *
 * Return: the size asked for, rounded up to a multiple of 8.
 */
size_t kd_slice_size(const struct kd_slice *slice)
{
	return slice->len;
}

/* a range inside the slice, or a bug of the caller */
static bool kd_slice_range_ok(const struct kd_slice *s, size_t off,
			      size_t len)
{
	return !WARN_ON_ONCE(off > s->len || len > s->len - off);
}

/**
 * kd_slice_write() - copy kernel memory into a slice
 * @s:		the slice
 * @off:	offset in the slice
 * @src:	the bytes
 * @len:	how many
 *
 * May sleep (first touch of a page).
 *
 * Return: 0, -EINVAL for a range outside the slice, or -ENOMEM.
 */
int kd_slice_write(struct kd_slice *s, size_t off, const void *src,
		   size_t len)
{
	size_t pos = s->off + off, n;
	void *dst;

	if (!kd_slice_range_ok(s, off, len))
		return -EINVAL;
	while (len) {
		n = len;
		dst = kd_pool_addr(s->pool, pos, &n, true);
		if (!dst)
			return -ENOMEM;
		memcpy(dst, src, n);
		src += n;
		pos += n;
		len -= n;
	}
	return 0;
}

/*
 * Large copies from user memory go through the kernel mapping of the
 * user's pages, pinned a batch at a time: one page-table walk per page
 * and a plain memcpy(), which costs less than copy_from_user() on
 * machines whose user-copy instructions are slow (emulated CPUs).
 */
#define KD_PIN_MIN	1024
#define KD_PIN_BATCH	16

/*
 * Copies what it can of @len bytes from pinned pages. Returns the bytes
 * copied (the rest could not be pinned), or -ENOMEM from the pool.
 */
static ssize_t kd_slice_write_pinned(struct kd_slice *s, size_t off,
				     const void __user *src, size_t len)
{
	struct page *pages[KD_PIN_BATCH] __uninitialized;
	unsigned long addr = (unsigned long)src;
	size_t done = 0, n;
	int got, i, ret = 0;
	void *from;

	while (!ret && done < len) {
		got = DIV_ROUND_UP(offset_in_page(addr) + len - done,
				   PAGE_SIZE);
		got = pin_user_pages_fast(addr & PAGE_MASK,
					  min(got, KD_PIN_BATCH), 0, pages);
		if (got <= 0)
			break;
		for (i = 0; !ret && i < got && done < len; i++) {
			n = min_t(size_t, len - done,
				  PAGE_SIZE - offset_in_page(addr));
			from = kmap_local_page(pages[i]);
			ret = kd_slice_write(s, off + done,
					     from + offset_in_page(addr), n);
			kunmap_local(from);
			done += n;
			addr += n;
		}
		unpin_user_pages(pages, got);
	}
	return ret ? ret : (ssize_t)done;
}

/**
 * kd_slice_write_user() - copy user memory into a slice
 * @s:		the slice
 * @off:	offset in the slice
 * @src:	the user's bytes
 * @len:	how many
 *
 * May fault and sleep: the caller holds no lock.
 *
 * Return: 0, -EFAULT if @src is not readable, -EINVAL or -ENOMEM.
 */
int kd_slice_write_user(struct kd_slice *s, size_t off,
			const void __user *src, size_t len)
{
	size_t pos = s->off + off, n;
	void *dst;

	if (!kd_slice_range_ok(s, off, len))
		return -EINVAL;
	if (len >= KD_PIN_MIN) {
		/* what could not be pinned is left to copy_from_user() */
		ssize_t done = kd_slice_write_pinned(s, off, src, len);

		if (done < 0)
			return done;
		n = done;
		src += n;
		pos += n;
		len -= n;
	}
	while (len) {
		n = len;
		dst = kd_pool_addr(s->pool, pos, &n, true);
		if (!dst)
			return -ENOMEM;
		if (copy_from_user(dst, src, n))
			return -EFAULT;
		src += n;
		pos += n;
		len -= n;
	}
	return 0;
}

/**
 * kd_slice_clear() - zero a part of a slice
 * @s:		the slice
 * @off:	offset in the slice
 * @len:	how many bytes
 *
 * Return: 0, -EINVAL or -ENOMEM.
 */
int kd_slice_clear(struct kd_slice *s, size_t off, size_t len)
{
	size_t pos = s->off + off, n;
	void *dst;

	if (!kd_slice_range_ok(s, off, len))
		return -EINVAL;
	while (len) {
		n = len;
		dst = kd_pool_addr(s->pool, pos, &n, true);
		if (!dst)
			return -ENOMEM;
		memset(dst, 0, n);
		pos += n;
		len -= n;
	}
	return 0;
}

/**
 * kd_slice_copy() - copy the start of one slice into another
 * @dst:	the target slice (usually of another pool)
 * @src:	the source slice
 * @len:	bytes from the start of both
 *
 * Return: 0, -EINVAL or -ENOMEM.
 */
int kd_slice_copy(struct kd_slice *dst, const struct kd_slice *src,
		  size_t len)
{
	size_t dpos = dst->off, spos = src->off, n;
	void *to, *from;

	if (!kd_slice_range_ok(dst, 0, len) || !kd_slice_range_ok(src, 0, len))
		return -EINVAL;
	while (len) {
		n = len;
		from = kd_pool_addr(src->pool, spos, &n, false);
		to = kd_pool_addr(dst->pool, dpos, &n, true);
		if (!to)
			return -ENOMEM;
		if (from)
			memcpy(to, from, n);
		else
			memset(to, 0, n);
		dpos += n;
		spos += n;
		len -= n;
	}
	return 0;
}

/**
 * kd_slice_read() - copy a part of a slice into kernel memory
 * @s:		the slice
 * @off:	offset in the slice
 * @dst:	the buffer
 * @len:	how many bytes
 *
 * Return: 0 or -EINVAL.
 */
int kd_slice_read(const struct kd_slice *s, size_t off, void *dst,
		  size_t len)
{
	size_t pos = s->off + off, n;
	void *from;

	if (!kd_slice_range_ok(s, off, len))
		return -EINVAL;
	while (len) {
		n = len;
		from = kd_pool_addr(s->pool, pos, &n, false);
		if (from)
			memcpy(dst, from, n);
		else
			memset(dst, 0, n);
		dst += n;
		pos += n;
		len -= n;
	}
	return 0;
}

/* the mapping: read-only views of the pool pages, filled on fault */

static void kd_pool_vm_open(struct vm_area_struct *vma)
{
	struct kd_pool *pool = vma->vm_private_data;

	kref_get(&pool->kref);
}

static void kd_pool_vm_close(struct vm_area_struct *vma)
{
	kd_pool_put(vma->vm_private_data);
}

static vm_fault_t kd_pool_vm_fault(struct vm_fault *vmf)
{
	struct kd_pool *pool = vmf->vma->vm_private_data;
	struct page *page;

	if (vmf->pgoff >= pool->n_pages)
		return VM_FAULT_SIGBUS;
	page = kd_pool_page(pool, vmf->pgoff, true);
	if (!page)
		return VM_FAULT_OOM;
	get_page(page);
	vmf->page = page;
	return 0;
}

static const struct vm_operations_struct kd_pool_vm_ops = {
	.open	= kd_pool_vm_open,
	.close	= kd_pool_vm_close,
	.fault	= kd_pool_vm_fault,
};

/**
 * kd_pool_mmap() - map a pool read-only
 * @pool:	the pool
 * @vma:	the new mapping, checked by the caller for everything else
 *
 * The mapping can never become writable, and it cannot grow past the
 * pool (VM_DONTEXPAND); it holds a reference on the pool.
 *
 * Return: 0, -EPERM for a writable mapping, -EFAULT for one that
 * reaches past the end of the pool.
 */
int kd_pool_mmap(struct kd_pool *pool, struct vm_area_struct *vma)
{
	unsigned long pages = vma_pages(vma);

	if (vma->vm_flags & VM_WRITE)
		return -EPERM;
	if (vma->vm_pgoff >= pool->n_pages ||
	    pages > pool->n_pages - vma->vm_pgoff)
		return -EFAULT;

	kd_vm_flags_mod(vma, VM_DONTEXPAND, VM_MAYWRITE);
	vma->vm_ops = &kd_pool_vm_ops;
	vma->vm_private_data = pool;
	kref_get(&pool->kref);
	return 0;
}
