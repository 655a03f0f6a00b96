/*
 * arena.c - sq_arena: a bump allocator for query trees.
 *
 * A query is built (where tree, attribute lists, value arrays), rendered
 * and run inside one call, then thrown away whole. Bumping a pointer in a
 * chain of blocks and freeing the chain at the end is both faster than
 * malloc/free per node and leak-proof on every error path: the binding
 * only has to free the arena.
 */
#include "sqorm.h"

#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_ALIGN 16
#define ARENA_BLOCK 4096          /* payload bytes of an ordinary block */
#define ARENA_BIG (ARENA_BLOCK / 4) /* requests above this get their own block */

typedef struct blk {
  struct blk *next;
  size_t cap, used;
  /* Keeps data[] 16-byte aligned whatever the header size. */
  alignas(ARENA_ALIGN) unsigned char data[];
} blk;

struct sq_arena {
  blk *head;   /* the block being bumped; big blocks are linked behind it */
};

static blk *blk_new(size_t cap) {
  if (cap > SIZE_MAX - sizeof(blk)) return NULL;
  blk *b = malloc(sizeof(blk) + cap);
  if (!b) return NULL;
  b->next = NULL;
  b->cap = cap;
  b->used = 0;
  return b;
}

sq_arena *sq_arena_new(void) {
  sq_arena *a = malloc(sizeof *a);
  if (!a) return NULL;
  a->head = blk_new(ARENA_BLOCK);
  if (!a->head) {
    free(a);
    return NULL;
  }
  return a;
}

/*
 * Rounds n up to 16 and bumps. A big request gets a block of its own that
 * is linked *behind* the current head, so the free space left in the head
 * stays usable for the small requests that follow. n == 0 still returns a
 * unique, valid pointer (like malloc(1)).
 */
void *sq_arena_alloc(sq_arena *a, size_t n) {
  if (!a) return NULL;
  if (n > SIZE_MAX - ARENA_ALIGN) return NULL;
  size_t need = n ? (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1) : ARENA_ALIGN;
  blk *h = a->head;
  if (h->cap - h->used >= need) {
    void *p = h->data + h->used;
    h->used += need;
    return p;
  }
  if (need > ARENA_BIG) {
    blk *b = blk_new(need);
    if (!b) return NULL;
    b->used = need;
    b->next = h->next;
    h->next = b;
    return b->data;
  }
  blk *b = blk_new(ARENA_BLOCK);
  if (!b) return NULL;
  b->used = need;
  b->next = h;
  a->head = b;
  return b->data;
}

/* Frees every block but one ordinary block, which is kept (emptied) so a
 * long-lived arena reused per query stops calling malloc once warm. */
void sq_arena_reset(sq_arena *a) {
  if (!a) return;
  blk *keep = NULL, *b = a->head;
  while (b) {
    blk *next = b->next;
    if (!keep && b->cap == ARENA_BLOCK) {
      keep = b;
    } else {
      free(b);
    }
    b = next;
  }
  /* The head is always an ordinary block, so keep is never NULL. */
  keep->next = NULL;
  keep->used = 0;
  a->head = keep;
}

void sq_arena_free(sq_arena *a) {
  if (!a) return;
  blk *b = a->head;
  while (b) {
    blk *next = b->next;
    free(b);
    b = next;
  }
  free(a);
}
