# t/034_version.pl: the version is written once.
#
# It is default_version in bingo_tune.control.  The Makefile takes the
# install script's name from it and tools/Makefile the tool's version, so
# those follow by construction; this checks that they did.  PGXN's META.json
# (semver: "1.0" is "1.0.0") and debian/changelog (VERSION-REVISION) have to
# carry it as text, so this holds them to the control file.  No server.

use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use BingoTune;
use JSON::PP;

my $root = $ENV{TESTDIR};

my ($version) =
  slurp_file("$root/bingo_tune.control") =~ /^default_version\s*=\s*'([^']+)'/m;
ok(defined $version, 'bingo_tune.control sets default_version')
  or BAIL_OUT('no default_version in bingo_tune.control');
ok(-f "$root/bingo_tune--$version.sql",
	"the install script of version $version exists");

my (undef, $out) = tool('--version');
is($out, "bingo_tune $version\n",
	'bingo_tune --version prints the control file\'s version');
(undef, $out) = tool('install', '--help');
like($out, qr/updates it to version \Q$version\E, this\s+tool's version/,
	'bingo_tune install --help names the control file\'s version');

{
	my $meta = decode_json(slurp_file("$root/META.json"));
	(my $semver = $version) =~ s/^(\d+\.\d+)$/$1.0/;
	is($meta->{version}, $semver, "META.json's version is $semver");
	is($meta->{provides}{bingo_tune}{version},
		$semver, "META.json's provides.bingo_tune.version is $semver");
	is($meta->{provides}{bingo_tune}{file},
		"bingo_tune--$version.sql",
		"META.json's provides.bingo_tune.file is the install script");
}

{
	my ($deb) = slurp_file("$root/debian/changelog") =~ /^\S+ \(([^)]+)\)/;
	like($deb, qr/^\Q$version\E-[^-]+$/,
		"debian/changelog's newest entry packages version $version");
}

done_testing();
