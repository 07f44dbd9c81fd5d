# Allocation-heavy Perl: a hash of 40,000 keys built, rewritten and
# half deleted; regex matching, captures and substitution over generated
# text; sorts with custom comparators; strings grown and split; nested
# structures; and, where perl has ithreads (Debian's does), four threads
# doing the same on their own data, joined, their results compared.
use strict;
use warnings;
use Config;
use Digest::MD5 qw(md5_hex);

my @words = qw(alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu
               malloc free span segment arena heap thread);
my $x = 12345;
sub rnd { $x = ($x * 1103515245 + 12345) % 2147483648; return $x; }

sub work {
  my ($seed, $n) = @_;
  $x = $seed;
  my %h;
  for my $i (1 .. $n) {
    my $k = $words[rnd() % @words] . "-" . rnd() % 100000 . "-$i";
    $h{$k} = [ $i, $words[$i % @words] x (1 + $i % 5), { n => $i } ];
  }
  for my $k (keys %h) { delete $h{$k} if $h{$k}[0] % 2 }
  for my $k (keys %h) { $h{$k}[1] =~ s/(a|e)/uc $1/ge; }
  my @sorted = sort { $h{$a}[1] cmp $h{$b}[1] or $a cmp $b } keys %h;
  my $text = join "\n", map { "$_ => $h{$_}[1] $h{$_}[2]{n}" } @sorted;
  my %count;
  $count{$1}++ while $text =~ /\b([A-Za-z]+)-(\d+)-\d+\b/g;
  my @lines = split /\n/, $text;
  my @nums = sort { $a <=> $b } map { /(\d+)$/ ? $1 : () } @lines;
  my $s = "";
  $s .= sprintf("%x,", $_) for @nums[0 .. ($#nums < 999 ? $#nums : 999)];
  return join " ", scalar(keys %h), md5_hex($text),
              join(",", map { "$_=$count{$_}" } sort keys %count), md5_hex($s), length($text);
}

print "main: ", work(1, 40000), "\n";

if ($Config{useithreads}) {
  require threads;
  my @t = map { my $seed = $_; threads->create(sub { work($seed, 10000) }) } 2 .. 5;
  my @r = map { $_->join } @t;
  my @again = map { work($_, 10000) } 2 .. 5;
  for my $i (0 .. $#r) {
    print "thread ", $i + 2, ": $r[$i]\n";
    print "thread ", $i + 2, " differs from the same work on the main thread\n" if $r[$i] ne $again[$i];
  }
} else {
  print "no ithreads in this perl\n";
}
