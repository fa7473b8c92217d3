# Burst plot: live bytes over time. Variables (gnuplot -e): capped and peer (traces "ms live_MiB"
# of bpool capped and of mimalloc), cap_mib (the cap), outfile (PNG).
# pngcairo where this gnuplot has it (Debian's gnuplot-nox does), the plain png terminal otherwise.
if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) {
    set terminal pngcairo size 900,560 noenhanced font ",11"
} else {
    set terminal png size 900,560 noenhanced
}
set output outfile
set title "Burst of 10,000 connections x 32 KiB: live memory over time"
set xlabel "time since the burst began (ms)"
set ylabel "live MiB"
set key top right
set grid
set yrange [0:*]
plot peer using 1:2 with lines lw 2 title "mimalloc (unbounded)", \
     capped using 1:2 with lines lw 2 title sprintf("bpool, capped at %d MiB (wait)", cap_mib), \
     cap_mib with lines dt 2 lc rgb "gray" title "cap"
