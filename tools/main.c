/*-------------------------------------------------------------------------
 *
 * main.c
 *		The bingo_tune pre-deploy tool: entry point, subcommand dispatch,
 *		--help and --version.
 *
 * bingo_tune is run before the bingo app starts (systemd ExecStartPre=, a
 * one-shot compose service).  It installs or updates the bingo_tune
 * extension, runs bingo's prepare_db exactly once however many nodes start
 * at the same time, builds the indexes bingo needs right after the load, and
 * can fail a deploy whose statements are over budget.  Each subcommand lives
 * in its own file: install.c, prepare.c (prepare-db and apply), budget.c
 * (report and check); common.c holds what they share.
 *
 * tools/main.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres_fe.h"

#include "common.h"
#include "getopt_long.h"

typedef struct BtSubcommand
{
	const char *name;
	int			(*main) (int argc, char **argv);
	const char *summary;
} BtSubcommand;

static const BtSubcommand bt_subcommands[] = {
	{"install", bt_install_main,
	"check the server, create or update the extension"},
	{"prepare-db", bt_prepare_main,
	"install, run prepare_db once across all nodes, build the indexes"},
	{"apply", bt_apply_main,
	"build the missing indexes now and show what was done"},
	{"report", bt_report_main,
	"print the latency report of the watched statements"},
	{"check", bt_check_main,
	"run the watched statements now; fail when one is over budget"},
	{NULL, NULL, NULL}
};

static void
usage(void)
{
	const BtSubcommand *sc;

	printf("%s is the pre-deploy hook for bingo: it installs the bingo_tune extension,\n"
		   "runs prepare_db once however many nodes start, builds the indexes right\n"
		   "after it and checks the statements' latency budgets.\n\n",
		   BT_PROGNAME);
	printf("Usage:\n  %s COMMAND [OPTION]... [DBNAME [USERNAME]]\n\n", BT_PROGNAME);
	printf("Commands:\n");
	for (sc = bt_subcommands; sc->name; sc++)
		printf("  %-12s %s\n", sc->name, sc->summary);
	printf("\nOptions of every command:\n");
	bt_print_connection_help();
	printf("  -q, --quiet              print errors and warnings only\n"
		   "  -v, --verbose            also print the queries and every server notice\n"
		   "  -?, --help               show help, then exit\n"
		   "  -V, --version            show the version, then exit\n");
	printf("\nExit codes:\n"
		   "  0  done                     5  extension version does not match the tool\n"
		   "  1  error                    6  check: a statement is over its budget\n"
		   "  2  usage error              7  prepare-db: the command left tables empty\n"
		   "  3  could not connect        8  prepare-db: --lock-timeout expired\n"
		   "  4  server not prepared      9  prepare-db: tables hold data no run recorded\n"
		   "  prepare-db exits with its command's own status when the command fails\n"
		   "  (128+N when it was ended by signal N), and with 128+N when it is\n"
		   "  interrupted by signal N.\n");
	printf("\nRun \"%s COMMAND --help\" for the options of a command.\n", BT_PROGNAME);
}

int
main(int argc, char **argv)
{
	const BtSubcommand *sc;

	/* messages say "bingo_tune: ...", whatever name the tool was run by */
	pg_logging_init(BT_PROGNAME);
	if (argc < 2)
	{
		pg_log_error("no command given");
		pg_log_error_hint("Try \"%s --help\".", BT_PROGNAME);
		return BT_EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-?") == 0 ||
		strcmp(argv[1], "help") == 0)
	{
		usage();
		return BT_EXIT_OK;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0)
	{
		printf("%s %s\n", BT_PROGNAME, BT_TOOL_VERSION);
		return BT_EXIT_OK;
	}

	for (sc = bt_subcommands; sc->name; sc++)
	{
		if (strcmp(argv[1], sc->name) == 0)
		{
			bt_install_signal_handlers();
			/* the subcommand sees its name as argv[0] */
			return sc->main(argc - 1, argv + 1);
		}
	}

	if (argv[1][0] == '-')
	{
		/* "bingo_tune -h host report" is the one likely mix-up */
		pg_log_error("options come after the command, not before: \"%s\"", argv[1]);
		pg_log_error_hint("For example: %s report -h HOST -p PORT -U USER -d DBNAME; help is \"%s --help\" or \"%s -?\".",
						  BT_PROGNAME, BT_PROGNAME, BT_PROGNAME);
		return BT_EXIT_USAGE;
	}
	pg_log_error("unknown command \"%s\"", argv[1]);
	pg_log_error_hint("Try \"%s --help\" for the list of commands.", BT_PROGNAME);
	return BT_EXIT_USAGE;
}

/*
 * Parse the common options, a subcommand's own, and the positional
 * arguments DBNAME and USERNAME, as psql takes them.  -? and --help print
 * the subcommand's help.  The connection options are checked here, before
 * anything connects.  Returns -1 when parsing went fine, otherwise the exit
 * code (0 after --help or --version).
 */
int
bt_parse_simple_args(int argc, char **argv, const struct option *extra,
					 const char *extra_short, bool (*handle) (int c, const char *arg),
					 void (*help) (void))
{
	static const struct option common_long[] = {
		{"host", required_argument, NULL, 'h'},
		{"port", required_argument, NULL, 'p'},
		{"username", required_argument, NULL, 'U'},
		{"dbname", required_argument, NULL, 'd'},
		{"no-password", no_argument, NULL, 'w'},
		{"quiet", no_argument, NULL, 'q'},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'H'},	/* -? is handled below */
		{"version", no_argument, NULL, 'V'},
	};
	struct option longopts[32];
	char		shortopts[64];
	int			n = 0;
	int			c;
	int			i;

	for (i = 0; i < lengthof(common_long); i++)
		longopts[n++] = common_long[i];
	for (i = 0; extra && extra[i].name; i++)
		longopts[n++] = extra[i];
	memset(&longopts[n], 0, sizeof(struct option));
	snprintf(shortopts, sizeof(shortopts), "h:p:U:d:wqvV%s", extra_short ? extra_short : "");

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1)
	{
		if (c == 'H' || (c == '?' && optopt == '?'))
		{
			help();
			return BT_EXIT_OK;
		}
		if (c == 'V')
		{
			printf("%s %s\n", BT_PROGNAME, BT_TOOL_VERSION);
			return BT_EXIT_OK;
		}
		if (bt_parse_common_option(c, optarg))
			continue;
		if (c != '?' && c != ':' && handle && handle(c, optarg))
			continue;
		if (c == '?' && optopt != 0)
			pg_log_error("unknown or incomplete option \"-%c\" for %s", optopt, argv[0]);
		else if (c == '?' || c == ':')
			pg_log_error("unknown or incomplete option \"%s\" for %s", argv[optind - 1], argv[0]);
		pg_log_error_hint("Try \"%s %s --help\".", BT_PROGNAME, argv[0]);
		return BT_EXIT_USAGE;
	}

	/*
	 * DBNAME [USERNAME], as psql takes them; but where psql would ignore an
	 * extra argument or take it for a user name after -d, refuse: a deploy
	 * hook should not guess.
	 */
	for (i = 0; optind < argc; optind++, i++)
	{
		if (i == 0 && bt_opts.dbname == NULL)
			bt_opts.dbname = argv[optind];
		else if (i == 1 && bt_opts.username == NULL)
			bt_opts.username = argv[optind];
		else
		{
			pg_log_error("too many arguments for %s, starting with \"%s\"", argv[0], argv[optind]);
			pg_log_error_hint("Give the database once, as DBNAME or with -d (a name, a connection string or a URI, quoted if it has spaces); prepare-db wants \"--\" before its command.");
			return BT_EXIT_USAGE;
		}
	}
	if (!bt_check_connection_options())
	{
		pg_log_error_hint("Try \"%s %s --help\".", BT_PROGNAME, argv[0]);
		return BT_EXIT_USAGE;
	}
	return -1;
}
