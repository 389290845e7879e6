/* SPDX-License-Identifier: MIT */
/* cmds.h - the xmem subcommands; each takes argv[0] == its own name. */
#ifndef XMEM_CMDS_H
#define XMEM_CMDS_H

int cmd_device(int argc, char **argv);
int cmd_region(int argc, char **argv);
int cmd_range(int argc, char **argv);

/* Layers above the foundation; weak, so the tool links without them. */
int cmd_heap(int argc, char **argv) __attribute__((weak));
int cmd_blk(int argc, char **argv) __attribute__((weak));
int cmd_tier(int argc, char **argv) __attribute__((weak));

#endif /* XMEM_CMDS_H */
