/* SPDX-License-Identifier: MIT */
#include <stdio.h>

#include "cvopt/cvopt.h"
#include "macro.h"

int main(int argc, char **argv) {
        (void) argc;
        (void) argv;
        fprintf(stderr, "usage: cvopt COMMAND ...\n");
        return 2;
}
