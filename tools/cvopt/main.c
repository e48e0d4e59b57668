/* SPDX-License-Identifier: MIT */
/* cvopt: the optimizer CLI. main() only dispatches: each command lives in
 * its own cmd-NAME.c with its own options, help and exit code. */
#include <string.h>

#include "cli.h"

static const CliCommand commands[] = {
        { "convert", "import an ONNX model, optimize the graph, write a .cvm", cmd_convert, cmd_convert_help },
        { "info", "describe a model: inputs, outputs, spec, labels, layers", cmd_info, cmd_info_help },
        { "run", "classify images (or a raw input tensor) with a model", cmd_run, cmd_run_help },
        { "eval", "accuracy of a model on a labelled dataset", cmd_eval, cmd_eval_help },
        { "optimize", "prune and quantize a float model, with a before/after report", cmd_optimize, cmd_optimize_help },
        { "bench", "latency and memory of one inference", cmd_bench, cmd_bench_help },
        { "analyze", "per-layer sensitivity to quantization and pruning", cmd_analyze, cmd_analyze_help },
};

static void help(FILE *f) {
        fprintf(f,
                "Usage: cvopt COMMAND [OPTIONS...] [ARGS...]\n"
                "\n"
                "Turns a float CNN image classifier (ONNX) into a small, fast .cvm model.\n"
                "\n"
                "Commands:\n");
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
        fprintf(f,
                "\n"
                "Options:\n"
                "  -h --help      show this help\n"
                "     --version   show the version\n"
                "\n"
                "A MODEL may be .onnx or .cvm (told apart by content). 'cvopt COMMAND --help'\n"
                "describes a command. Exit status: 0 success, 1 failure, 2 bad usage.\n");
}

int main(int argc, char **argv) {
        const char *name;

        if (argc < 2) {
                help(stderr);
                return EXIT_USAGE;
        }
        name = argv[1];
        if (streq(name, "-h") || streq(name, "--help") || streq(name, "help")) {
                help(stdout);
                return EXIT_SUCCESS;
        }
        if (streq(name, "--version")) {
                printf("cvopt %s\n", CVOPT_VERSION);
                return EXIT_SUCCESS;
        }
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                if (streq(name, commands[i].name))
                        /* The command sees itself as argv[0], as getopt_long expects. */
                        return commands[i].run(argc - 1, argv + 1);
        fprintf(stderr, "cvopt: unknown command '%s'\nTry 'cvopt --help'.\n", name);
        return EXIT_USAGE;
}
