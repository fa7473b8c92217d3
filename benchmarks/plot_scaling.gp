# Thread scaling plot. Variables (gnuplot -e): datafile (a header row "threads <subject>...", then
# one row per thread count, throughput in Mops/s), columns (number of columns), outfile (PNG).
# pngcairo where this gnuplot has it (Debian's gnuplot-nox does), the plain png terminal otherwise.
if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) {
    set terminal pngcairo size 900,560 noenhanced font ",11"
} else {
    set terminal png size 900,560 noenhanced
}
set output outfile
set title "N threads churning one shared instance (8 B - 1 KiB, live set 1024 per thread)"
set xlabel "threads"
set ylabel "million ops/s, all threads (higher is better)"
set key outside right top
set grid
set logscale x 2
set xrange [0.8:*]
set yrange [0:*]
plot for [i=2:columns] datafile using 1:i with linespoints lw 2 pt 7 title columnheader(i)
