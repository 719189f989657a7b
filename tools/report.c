/* placeholder, replaced below */
#include "postgres_fe.h"
#include "common.h"
int bt_report_main(int argc, char **argv) { return 1; }
int bt_check_main(int argc, char **argv) { return 1; }
