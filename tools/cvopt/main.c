/* SPDX-License-Identifier: MIT */
#include <stdio.h>

#include "cli.h"
#include "macro.h"

typedef struct Command {
        const char *name;
        int (*run)(int argc, char **argv);
        const char *summary;
} Command;

static const Command commands[] = {
        { "eval", cmd_eval, "accuracy of a model on a labelled dataset" },
        { "optimize", cmd_optimize, "prune and quantize a float model, with a before/after report" },
        { "bench", cmd_bench, "latency and memory of one inference" },
        { "analyze", cmd_analyze, "per-layer sensitivity to quantization and pruning" },
};

static void help(void) {
        printf("Usage: cvopt COMMAND [options]\n\nCommands:\n");
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                printf("  %-10s %s\n", commands[i].name, commands[i].summary);
        printf("\n'cvopt COMMAND --help' describes each.\n");
}

int main(int argc, char **argv) {
        if (argc < 2) {
                help();
                return EXIT_USAGE;
        }
        if (streq(argv[1], "--help") || streq(argv[1], "-h")) {
                help();
                return EXIT_OK;
        }
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                if (streq(argv[1], commands[i].name))
                        return commands[i].run(argc - 1, argv + 1);
        fprintf(stderr, "cvopt: unknown command '%s'\n", argv[1]);
        help();
        return EXIT_USAGE;
}
