/* SPDX-License-Identifier: MIT */
/*
 * region_names - range names are 1..47 bytes of [A-Za-z0-9._+@-]: create
 * refuses ':' (the CLI's DEVICE:RANGE separator), '/', blanks, control
 * bytes and lengths outside 1..47; a label on the device whose name breaks
 * the rule (checksum intact) makes open fail with XMEM_E_CORRUPT naming the
 * label slot and its offset.
 */
#include <inttypes.h>
#include <stdint.h>
#include <string.h>
#include <xmem.h>

#include "core/checksum.h"
#include "region/region_layout.h"
#include "test.h"

#define MiB (1ull << 20)

int main(void)
{
	static const char *const bad[] = { "a:b",   "dev:range", "a/b",
					   "a b",   "a\tb",	 "a\nb",
					   "a\x01", "a\x7f",	 "\xc3\xa9",
					   "" };
	char longest[XMEM_RANGE_NAME_MAX + 2], msg[64];
	struct xmem_device *dev;
	struct xmem_region *reg;
	struct xmem_range_info ri;
	struct xmem_label_layout l;
	uint64_t off;
	uint32_t c;

	REQUIRE_OK(xmem_device_open(&dev, "memfd:region-names", 8 * MiB, 0));
	REQUIRE_OK(xmem_region_create(dev, &reg));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = xmem_range_create(reg, bad[i], 4096, XMEM_ALIGN_4K, 0,
					   NULL);
		if (rc != -EINVAL)
			fprintf(stderr, "name %zu accepted\n", i);
		CHECK(rc == -EINVAL);
	}
	memset(longest, 'x', sizeof(longest));
	longest[XMEM_RANGE_NAME_MAX + 1] = 0; /* 48 bytes */
	CHECK(xmem_range_create(reg, longest, 4096, XMEM_ALIGN_4K, 0, NULL) ==
	      -EINVAL);
	longest[XMEM_RANGE_NAME_MAX] = 0; /* 47 bytes */
	CHECK_OK(xmem_range_create(reg, longest, 4096, XMEM_ALIGN_4K, 0, NULL));
	CHECK_OK(xmem_range_create(reg, "Az09._+@-", 4096, XMEM_ALIGN_4K, 0,
				   NULL));
	REQUIRE_OK(xmem_range_create(reg, "ok", 4096, XMEM_ALIGN_4K, 0, &ri));
	xmem_region_close(&reg);

	/* a valid label (checksum and all) whose name holds a ':' */
	off = XMEM_SLOT_OFF(ri.slot);
	REQUIRE(pread(xmem_device_fd(dev), &l, sizeof(l), (off_t)off) ==
		(ssize_t)sizeof(l));
	memcpy(l.name, "o:k", 4);
	c = xmem__csum_struct(&l, sizeof(l),
			      offsetof(struct xmem_label_layout, csum));
	l.csum = c; /* little-endian host */
	REQUIRE(pwrite(xmem_device_fd(dev), &l, sizeof(l), (off_t)off) ==
		(ssize_t)sizeof(l));
	CHECK(xmem_region_open(dev, &reg) == XMEM_E_CORRUPT);
	printf("open: %s\n", xmem_errormsg());
	snprintf(msg, sizeof(msg), "label slot %u at offset %" PRIu64, ri.slot,
		 off);
	CHECK(strstr(xmem_errormsg(), msg) != NULL);
	CHECK(strstr(xmem_errormsg(), "name") != NULL);
	CHECK(xmem_region_check(dev, 0, NULL, NULL, NULL) == XMEM_E_CORRUPT);
	xmem_device_close(&dev);
	return test_result();
}
