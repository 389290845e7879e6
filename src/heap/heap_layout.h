/* SPDX-License-Identifier: MIT */
/*
 * heap_layout.h - the on-media format of an xmem heap (and its manual).
 *
 * All fields are little-endian. Offsets are from the start of the heap
 * (the start of its range); an xmem_oid is such an offset.
 *
 *   0        header, primary copy          (struct heap_header, 256 B)
 *   2048     header, backup copy
 *   4096     checkpoint line, copy A       (struct heap_ckpt, 64 B)
 *   4160     root line                     (struct heap_root, 64 B)
 *   4224     checkpoint line, copy B
 *   6144     done words: HEAP_NLANES lines of 64 B, one u64 each
 *   8192     lanes: HEAP_NLANES x HEAP_LANE_SIZE
 *              each: redo ring (HEAP_RING_SIZE) then undo area
 *   meta_off chunk metadata: nchunks x HEAP_META_SIZE
 *              each: chunk header (16 B, in a 64 B line), run bitmap
 *              with its mirror copy (2 KiB: each 64 B line holds four
 *              bitmap words then the same four mirror words, so both
 *              copies of a word change in one line), slot types (16 KiB:
 *              one u16 per slot of the smallest class, 32 B); 18,496 B
 *              per 256 KiB chunk, 7% of the heap, and no header in any
 *              object
 *   data_off chunks: nchunks x HEAP_CHUNK_SIZE (256 KiB), the only bytes
 *            user objects occupy. Metadata never sits next to user data,
 *            so an overflow of an object cannot reach it.
 *
 * Chunks. A chunk is free, a run, or the head of an extent:
 *   - a run holds objects of one size class; slot i is allocated when bit
 *     i of its bitmap is set (and of the mirror: the two must agree) and
 *     its type is types[i];
 *   - an extent is `nchunks` chunks holding one large object; only its
 *     head chunk has a header, the chunks it covers stay marked free and
 *     are skipped by every walk. An object can be as large as the heap.
 * A run whose slots are all free goes back to the free chunks (its header
 * cleared by a record) when a chunk allocation finds no free chunk.
 * A chunk header whose epoch differs from the heap's is free: a new heap
 * never has to clear the metadata of an old one (creating 1 GiB writes a
 * few KiB). A header with the heap's epoch must carry a valid checksum.
 *
 * Logs and crash consistency. Every change of allocator metadata and every
 * atomic publication goes through a redo record in the calling lane's
 * ring: the record (entries + checksums) is written and made durable with
 * ONE fence; that fence is the commit point. The entries are then applied
 * in place without a flush: recovery replays every record a checkpoint
 * has not retired, so the lines need to be durable only before that
 * checkpoint. Each lane lists the ranges its applied records changed;
 * a checkpoint flushes the ranges of every lane's list (appended by the
 * owner, the count published after the ranges; each lane's list restarts
 * with its ring, under the checkpoint lock), fences, and stores the
 * checkpoint sequence number C in both heap_ckpt copies, one fence
 * each; a lane reuses its ring from offset 0 only after C covers all its
 * records. Every record
 * has a sequence number from one heap-wide counter, taken while the
 * resources it changes are held, so conflicting records are ordered by
 * it, and a checkpoint never passes a record or transaction in flight.
 *
 * Replaying a record whose effects are already durable must be harmless:
 * allocator words change only through records (replayed in order), and
 * the words an operation publishes in user memory (the destination of an
 * atomic alloc/free, the new contents of a small transaction) are CSET
 * entries, applied only where the word still holds its old value.
 * Entries may target only what their kind owns: SET, OR, ANDN and ZERO
 * the chunk metadata zone, CSET the data area or the root word, USET the
 * data area. Recovery refuses a record with any other target.
 * A user word a live record wrote may later be rewritten outside the
 * records: by a transaction whose dirty data is flushed rather than
 * carried in its COMMIT record. Replaying the old entry would then undo
 * that write, so such a COMMIT record carries a USET entry with the new
 * value for every word of its snapshots that a live record wrote (each
 * lane keeps the list of user words its ring's records wrote). Freed
 * space is reused only once a checkpoint retired the free's record, so
 * no live entry ever targets the memory of a new object.
 *
 * Transactions snapshot ranges into the lane's undo area (entries with the
 * transaction's id and a checksum, made durable before add_range returns:
 * one fence per add_range of new bytes; overlapping snapshots are merged
 * at byte granularity). Commit writes a COMMIT redo record naming the
 * transaction: dirty snapshotted data up to HEAP_INLINE_MAX bytes rides in
 * it as CSET words; larger snapshots are flushed and fenced first. The
 * contents of objects the transaction allocated are rewritten in place
 * with non-temporal stores (flushed, above 4 KiB); objects up to
 * HEAP_DATA_MAX bytes (while the record's DATA stays under
 * HEAP_DATA_TOTAL) also ride in the record as DATA entries, so one fence
 * covers both, and only larger ones need the fence before the record.
 * Words set with xmem_tx_set64 are not snapshotted: they ride in the
 * COMMIT record as CSET entries (the value when first set as the old
 * one) and reach memory when it is applied. A record whose user words
 * overflow the lane's list (thousands of set words) is retired by a
 * checkpoint before the commit returns.
 * Small records and undo entries are written with non-temporal stores,
 * large ones with cached stores and flushes; either way the next fence
 * orders them.
 *
 * DATA entries and done words. After the fence of a record with DATA
 * entries the lane stores the record's seq in its done word: the
 * contents are durable in place by then. Recovery writes a DATA entry
 * back only when the lane's done word is below the record's seq (a crash
 * before the fence completed may have kept the record and lost some of
 * the contents). Once the done word is durable, recovery leaves the
 * object alone, so later changes to it stay. Every later change to heap
 * memory made durable through the heap (xmem_heap_persist, a commit
 * whose snapshots are flushed) flushes the done words of the lanes whose
 * words are newer than C before its fence: no such change is durable
 * while a done word that would let recovery undo it is not. Recovery
 * writes all DATA entries first, flushes them and fences, then replays
 * the records, so a crash during recovery finds either no DATA written
 * or all of it durable.
 * Abort restores the snapshots in place, fences, and writes an ABORT
 * record. The undo area is 32 KiB; larger snapshots continue in segments
 * of free chunks linked by LINK entries (taken for the transaction's
 * life only: recovery runs before anything can reuse them).
 *
 * Fences per operation: atomic alloc or free 1 (2 when the object is
 * zeroed, constructed or copied first); transaction: 1 per add_range of
 * new bytes, commit 1 (2 with large snapshots or new objects over
 * HEAP_DATA_MAX bytes), abort 2;
 * plus 3 per checkpoint (about one per 400 small records per lane).
 *
 * Recovery (on open), in O(lanes x (live ring records + undo entries)),
 * independent of the number of objects:
 *   1. read C (the valid copy with the higher seq); in each lane parse
 *      ring records with seq > C, stepping over retired ones (seq <= C)
 *      at the ring's start: a checkpoint may retire a lane's first
 *      records while it goes on appending (a torn record ends the lane's
 *      ring; an intact one after a damaged one, or any record newer than
 *      C past the ring's end, makes the heap refuse to open: records left
 *      from earlier passes are all retired) and the undo entries of the
 *      lane's last transaction (id > C);
 *   2. in sequence order: replay each record's entries (OR/ANDN/SET are
 *      idempotent; CSET words are applied only where the location still
 *      holds the old value), and roll back each transaction that has
 *      undo entries but neither COMMIT nor ABORT record (restoring its
 *      snapshots, latest first);
 *   3. fence, store C = the highest sequence seen (torn records included)
 *      in copy A, fence, in copy B, fence.
 * A crash during recovery repeats it with the same result.
 * Open then reads no chunk header: headers are read lazily, in growing
 * stretches, when allocation needs free chunks or runs (O(chunks) over
 * the heap's life, 4096 per GiB); run bitmaps are read on a run's first
 * use. Open time is the same for an empty heap and a full one.
 *
 * Check reads every structure: O(lanes x log + chunks x meta size).
 */
#ifndef XMEM_HEAP_LAYOUT_H
#define XMEM_HEAP_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#define HEAP_MAGIC "XMEMHEAP"
#define HEAP_VERSION 4u
#define HEAP_VERSION_MIN 3u /* opened, and marked 4 (no OR2, ANDN2) */

#define HEAP_HDR_OFF 0u
#define HEAP_HDR_BACKUP_OFF 2048u
#define HEAP_CKPT_OFF 4096u
#define HEAP_ROOT_OFF 4160u
#define HEAP_CKPT_B_OFF 4224u
#define HEAP_DONE_OFF 6144u /* + lane x 64: the lane's done word */
#define HEAP_LANES_OFF 8192u

#define HEAP_NLANES 32u
#define HEAP_RING_SIZE (64u << 10)
#define HEAP_UNDO_SIZE (32u << 10)
#define HEAP_LANE_SIZE (HEAP_RING_SIZE + HEAP_UNDO_SIZE)

#define HEAP_CHUNK_SHIFT 18u
#define HEAP_CHUNK_SIZE (1u << HEAP_CHUNK_SHIFT) /* 256 KiB */
#define HEAP_MIN_CLASS 32u
#define HEAP_MAX_SLOTS (HEAP_CHUNK_SIZE / HEAP_MIN_CLASS) /* 8192 */
#define HEAP_BITMAP_WORDS (HEAP_MAX_SLOTS / 64u)	  /* 128 */
#define HEAP_BITMAP_BYTES (2u * 8u * HEAP_BITMAP_WORDS)	  /* with mirror */

/* Per-chunk metadata block. */
#define HEAP_META_HDR 0u
#define HEAP_META_BITMAP 64u
/* Offset in the metadata block of bitmap word w and of its mirror (the
 * same line: OR2 and ANDN2 rely on it). */
#define HEAP_BM_OFF(w) (HEAP_META_BITMAP + ((w) >> 2) * 64u + ((w)&3u) * 8u)
#define HEAP_MIRROR_OFF(w) (HEAP_BM_OFF(w) + 32u)
#define HEAP_META_TYPES (64u + HEAP_BITMAP_BYTES)
#define HEAP_META_SIZE (HEAP_META_TYPES + 2u * HEAP_MAX_SLOTS) /* 18496 */

#define HEAP_MIN_SIZE (4ull << 20)
#define HEAP_INLINE_MAX 1024u /* dirty bytes carried in a COMMIT record */

/* The heap header (both copies). Written once, at create. */
struct heap_header {
	char magic[8];	  /* "XMEMHEAP" */
	uint32_t version; /* HEAP_VERSION */
	uint32_t csum;	  /* crc32c of the 256 bytes, this field 0 */
	uint8_t uuid[16];
	uint64_t heap_size;  /* bytes the heap spans */
	uint64_t created;    /* seconds since the epoch */
	uint32_t epoch;	     /* non-zero; tags chunk headers and logs */
	uint32_t nlanes;     /* HEAP_NLANES */
	uint32_t lane_size;  /* HEAP_LANE_SIZE */
	uint32_t ring_size;  /* HEAP_RING_SIZE */
	uint32_t chunk_size; /* HEAP_CHUNK_SIZE */
	uint32_t meta_size;  /* HEAP_META_SIZE */
	uint64_t lanes_off;  /* HEAP_LANES_OFF */
	uint64_t meta_off;
	uint64_t data_off; /* multiple of 4096 */
	uint64_t nchunks;
	uint8_t reserved[152];
};
_Static_assert(sizeof(struct heap_header) == 256, "heap_header size");
_Static_assert(offsetof(struct heap_header, csum) == 12, "csum offset");
_Static_assert(offsetof(struct heap_header, nchunks) == 96, "nchunks off");

/*
 * The checkpoint: records with seq <= C are retired. Two copies, each
 * written and fenced in turn (A then B), so a crash tears at most one;
 * the valid copy with the higher seq is C. A copy that fails its
 * checksum while the other is intact is a torn update (or damage that
 * the other copy covers: once both were written they hold the same C);
 * both damaged makes the heap refuse to open.
 */
#define HEAP_CKPT_MAGIC 0x54504b43u /* "CKPT" */
struct heap_ckpt {
	uint64_t seq;
	uint32_t magic; /* HEAP_CKPT_MAGIC */
	uint32_t csum;	/* crc32c of seq, magic and the heap's epoch */
	uint8_t reserved[48];
};
_Static_assert(sizeof(struct heap_ckpt) == 64, "heap_ckpt size");
_Static_assert(offsetof(struct heap_ckpt, csum) == 12, "heap_ckpt csum");

/* The root line: the root object's reference (published by a record). */
struct heap_root {
	uint64_t oid;
	uint8_t reserved[56];
};
_Static_assert(sizeof(struct heap_root) == 64, "heap_root size");

/* Chunk header: 16 bytes at the start of the chunk's metadata block. */
enum heap_chunk_kind {
	HEAP_CHUNK_FREE = 0,
	HEAP_CHUNK_RUN = 1,
	HEAP_CHUNK_EXTENT = 2,
	HEAP_CHUNK_QUARANTINE = 3, /* set by repair: never used again */
};

struct heap_chunk_hdr {
	uint8_t kind;	  /* enum heap_chunk_kind */
	uint8_t cls;	  /* run: size class index */
	uint16_t type;	  /* extent: the object's type */
	uint32_t csum;	  /* crc32c of the 16 bytes, this field 0 */
	uint32_t nchunks; /* extent: chunks covered (head included) */
	uint32_t epoch;	  /* the heap's epoch, else the chunk is free */
};
_Static_assert(sizeof(struct heap_chunk_hdr) == 16, "chunk hdr size");
_Static_assert(offsetof(struct heap_chunk_hdr, csum) == 4, "chunk csum");

/*
 * Redo records, in a lane's ring, back to back from offset 0, each padded
 * to 64 bytes. A record is valid when magic, epoch and both checksums
 * match and seq > C and > the previous record's seq.
 */
#define HEAP_REC_MAGIC 0x58524543u /* "CERX" */
enum heap_rec_kind {
	HEAP_REC_OP = 1,     /* an atomic operation */
	HEAP_REC_COMMIT = 2, /* a transaction committed (txid) */
	HEAP_REC_ABORT = 3,  /* a transaction was rolled back (txid) */
};

struct heap_rec_hdr {
	uint32_t magic;
	uint16_t kind; /* enum heap_rec_kind */
	uint16_t flags;
	uint32_t epoch;
	uint32_t nbytes; /* entry bytes that follow */
	uint64_t seq;
	uint64_t txid;	/* COMMIT/ABORT: the transaction's id */
	uint32_t pcsum; /* crc32c of the entry bytes */
	uint32_t hcsum; /* crc32c of this header, this field 0 */
	uint8_t reserved[24];
};
_Static_assert(sizeof(struct heap_rec_hdr) == 64, "rec hdr size");
_Static_assert(offsetof(struct heap_rec_hdr, hcsum) == 36, "rec hcsum");
_Static_assert(offsetof(struct heap_rec_hdr, epoch) == 8 &&
		       offsetof(struct heap_rec_hdr, seq) == 16 &&
		       offsetof(struct heap_rec_hdr, pcsum) == 32,
	       "rec hdr words (heap_log.c builds it word by word)");
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the heap's on-media words are little-endian, as the host must be"
#endif

/*
 * Redo entries: a 16-byte head { u64 op_off: op in bits 56..63, size in
 * bits 48..55, heap offset in bits 0..47; u64 value }, then for CSET
 * one more u64 (the old value), for EXT one more u64 (the checksum),
 * for DATA `value` bytes (1 to HEAP_DATA_MAX) padded to 8, and for ZERO
 * nothing (value = length).
 *
 * A record whose entries exceed HEAP_EXT_MIN bytes (a transaction with
 * thousands of allocations or frees) keeps them in a segment of free
 * chunks instead: written and fenced first, named by the record's one
 * EXT entry. The chunks stay reserved until a checkpoint retires the
 * record (they are free on the media: recovery runs before anything can
 * take them).
 */
enum heap_redo_op {
	HEAP_REDO_SET = 1,    /* store `value` (size 2 or 8 bytes) */
	HEAP_REDO_OR = 2,     /* 8-byte word |= value */
	HEAP_REDO_ANDN = 3,   /* 8-byte word &= ~value */
	HEAP_REDO_CSET = 4,   /* 8-byte word = value where it still holds old */
	HEAP_REDO_ZERO = 5,   /* zero `value` bytes */
	HEAP_REDO_USET = 6,   /* user-data word = value (a later direct write
				 that supersedes earlier CSET/USET entries) */
	HEAP_REDO_DATA = 7,   /* the contents of an object the record allocates
				 (replayed only if the lane's done word is
				 below the record's seq) */
	HEAP_REDO_EXT = 8,    /* the record's entries are `value` bytes at the
				 offset, in free chunks of the data area, with
				 the crc32c in the third word; the only entry
				 of its record (a commit too large for the
				 lane's ring) */
	HEAP_REDO_OR2 = 9,    /* OR, to a run's bitmap word and to its mirror
				 32 bytes after it, in the same line (from
				 layout version 4) */
	HEAP_REDO_ANDN2 = 10, /* AND NOT, the same way */
};
#define HEAP_REDO_OFF_MASK ((1ull << 48) - 1)
#define HEAP_DATA_MAX 256u	 /* largest object a DATA entry carries */
#define HEAP_DATA_TOTAL 512u	 /* DATA bytes one record carries at most */
#define HEAP_EXT_MIN (16u << 10) /* entries above this go to a segment */

/* A done word: the lane's newest record whose DATA entries are durable in
 * place, tagged with the heap's epoch so that a word from another heap,
 * or damage, is told apart from a value (0: none). */
#define HEAP_DONE_SEQ_MASK ((1ull << 48) - 1)
static inline uint64_t heap_done_word(uint64_t seq, uint32_t epoch)
{
	return (uint64_t)((epoch ^ (epoch >> 16) ^ 0x444fu) & 0xffffu) << 48 |
	       (seq & HEAP_DONE_SEQ_MASK);
}

struct heap_redo_ent {
	uint64_t op_off;
	uint64_t value;
};
_Static_assert(sizeof(struct heap_redo_ent) == 16, "redo ent size");

/*
 * Undo entries, in a lane's undo area (and, past it, in overflow
 * segments linked from a LINK entry): each a 64-byte header followed by
 * the snapshot data padded to 64 bytes. Valid when magic, epoch, csum
 * (header and data) match and txid equals the first entry's txid.
 */
#define HEAP_UNDO_MAGIC 0x58554e44u /* "DNUX" */
enum heap_undo_kind {
	HEAP_UNDO_RANGE = 1, /* data: the bytes at off before the tx */
	HEAP_UNDO_LINK = 2,  /* next entries at off, a segment of len bytes */
	HEAP_UNDO_END = 3,   /* no more entries */
};

struct heap_undo_hdr {
	uint32_t magic;
	uint16_t kind;
	uint16_t flags;
	uint32_t epoch;
	uint32_t csum; /* crc32c of header (this field 0) then data */
	uint64_t txid;
	uint64_t off;
	uint64_t len;
	uint8_t reserved[24];
};
_Static_assert(sizeof(struct heap_undo_hdr) == 64, "undo hdr size");

#endif /* XMEM_HEAP_LAYOUT_H */
