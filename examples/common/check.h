/* Self-checks shared by hello, paging and usermode: a failed check prints "FAIL: what" on
 * COM1 and is counted (the other examples print their checks in their own formats). */
#ifndef RINGSHIFT_CHECK_H
#define RINGSHIFT_CHECK_H

extern int check_failures;
void check(int ok, const char *what);

#endif
