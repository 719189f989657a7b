# bench/session_list.gp: the session list's execution time per index set,
# as a bar chart (median, with min-max bars).  bench/run.sh calls it:
#
#   gnuplot -e "datafile='...'; outfile='...png'; subtitle='...'" bench/session_list.gp
#
# datafile: one line per set, tab-separated: label, median_ms, min_ms,
# max_ms, the text to print above the bar

if (!exists("datafile")) datafile = 'bench/out/run/session_list.dat'
if (!exists("outfile")) outfile = 'bench/session_list.png'
if (!exists("subtitle")) subtitle = ''

set terminal pngcairo size 900,540 font 'sans,11' enhanced
set output outfile
set datafile separator '\t'

set title "bingo's session list (GET /api/session): execution time per index set\n{/*0.8 ".subtitle."}"
set ylabel 'execution time (s)'
stats datafile using 4 nooutput
set yrange [0:STATS_max / 1000 * 1.15]
set grid ytics lc rgb '#dddddd'
set border 3
set xtics nomirror scale 0 noenhanced font 'sans,12'
set ytics nomirror
set key off
set style fill solid 0.85 border -1
set boxwidth 0.55
set offsets 0.3, 0.3, 0, 0

# colours: red for none, amber for the usual set, green for bingo_tune's
colour(i) = (i == 0) ? 0xd9534f : (i == 1) ? 0xf0ad4e : 0x5cb85c

plot datafile using 0:($2 / 1000):(colour($0)):xtic(1) with boxes lc rgb variable, \
     '' using 0:($3 / 1000):(0):(($4 - $3) / 1000) with vectors heads size screen 0.008,90 lc rgb '#333333' lw 1.5, \
     '' using 0:($4 / 1000):5 with labels offset 0,1 font 'sans,12' noenhanced
