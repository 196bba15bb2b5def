/* SPDX-License-Identifier: MIT */
/*
 * command_loop: a child that serves commands until the parent says stop.
 *
 * The parent tells commands as strings: "add 5", "mul 3", "get". The child
 * keeps a value, applies each command, and answers "get" with the value.
 * When the parent calls sk_stop, the child's sk_listen first delivers the
 * commands still queued, then returns SK_ECLOSED: the loop ends, and the
 * result hook publishes the final value for sk_result.
 *
 * Build: gcc -std=c11 command_loop.c $(pkg-config --cflags --libs skproc)
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <skproc.h>

typedef struct {
    sk_process base;
    int64_t value;
    int64_t commands; /* how many commands the child served */
} calculator;

#define CALCULATOR(p) SK_CONTAINER_OF(p, calculator, base)

static int apply(sk_process *self, const char *cmd)
{
    calculator *c = CALCULATOR(self);
    long long arg = 0;
    if (sscanf(cmd, "add %lld", &arg) == 1)
        c->value += arg;
    else if (sscanf(cmd, "mul %lld", &arg) == 1)
        c->value *= arg;
    else if (strcmp(cmd, "get") == 0)
        return sk_tell(self, "I", &c->value); /* the answer */
    else
        return sk_fail(self, SK_EINVAL, "unknown command \"%s\"", cmd);
    return SK_OK;
}

/* One call of run serves the whole session. */
static int calculator_run(sk_process *self)
{
    char *cmd = NULL;
    int rc;
    while ((rc = sk_listen(self, -1, "s", &cmd)) == SK_OK) {
        CALCULATOR(self)->commands++;
        rc = apply(self, cmd);
        free(cmd); /* strings are malloc'ed by sk_listen */
        if (rc != SK_OK)
            return rc;
    }
    /* SK_ECLOSED: the parent called sk_stop and every command was read. */
    return rc == SK_ECLOSED ? 0 : sk_fail(self, rc, "listen: %s", sk_strerror(rc));
}

static int calculator_result(sk_process *self)
{
    calculator *c = CALCULATOR(self);
    return sk_return(self, "II", &c->value, &c->commands);
}

static const sk_class calculator_class = {
    .name = "calculator",
    .run = calculator_run,
    .result = calculator_result,
};

/* Tells one command; prints it, and the answer when it is "get". */
static int command(sk_process *p, const char *cmd)
{
    int rc = sk_tell(p, "s", &cmd);
    if (rc != SK_OK || strcmp(cmd, "get") != 0) {
        if (rc == SK_OK)
            printf("  %s\n", cmd);
        else
            printf("  %-6s -> %s\n", cmd, sk_strerror(rc));
        return rc;
    }
    int64_t value = 0;
    rc = sk_listen(p, 5, "I", &value);
    if (rc == SK_OK)
        printf("  %-6s -> %" PRId64 "\n", cmd, value);
    else
        printf("  %-6s -> %s\n", cmd, sk_strerror(rc));
    return rc;
}

int main(void)
{
    calculator calc = {.value = 0};
    sk_init(&calc.base, &calculator_class);
    int rc = sk_start(&calc.base);
    if (rc != SK_OK) {
        fprintf(stderr, "sk_start: %s\n", sk_strerror(rc));
        return 1;
    }

    const char *script[] = {"add 5", "mul 3", "get", "add -1", "mul 10", "get", "add 2"};
    rc = SK_OK;
    for (size_t i = 0; i < sizeof script / sizeof script[0] && rc == SK_OK; i++)
        rc = command(&calc.base, script[i]);

    /* "add 2" may still be queued: the child reads it before SK_ECLOSED. */
    sk_stop(&calc.base);
    int64_t value = 0, served = 0;
    int result = sk_result(&calc.base, "II", &value, &served);
    printf("sk_stop, then sk_result: %s, final value %" PRId64 " after %" PRId64 " commands\n",
           sk_strerror(result), value, served);
    if (result == SK_EPROCESS) {
        char report[2048];
        sk_error_format(sk_error_of(&calc.base), report, sizeof report);
        fputs(report, stderr);
    }
    sk_release(&calc.base);
    return rc == SK_OK && result == SK_OK && value == 142 && served == 7 ? 0 : 1;
}
