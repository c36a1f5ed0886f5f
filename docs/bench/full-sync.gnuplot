set terminal pngcairo size 800,480 font "sans,11"
set output "docs/bench/full-sync.png"
set title "Full sync into an empty nat table (ClusterIP services x 10 endpoints)"
set xlabel "services"
set ylabel "seconds"
set key top left
set grid
set yrange [0:*]
plot "docs/bench/full-sync.dat" using 1:3 with linespoints lw 2 pt 7 title "iptables-legacy-restore", \
     "" using 1:2 with linespoints lw 2 pt 5 title "natsync (libiptc)"