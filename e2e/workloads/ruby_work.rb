# Allocation-heavy Ruby: a hash of 50,000 entries built, rewritten and
# half deleted; strings built, gsub'd and split; sort_by; JSON generated and
# parsed back; four threads fed through a Queue, each with its own hash;
# GC forced between phases so freed memory really goes back to malloc.
require "digest/md5"
require "json"

WORDS = %w[alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu
           malloc free span segment arena heap thread].freeze

def lcg(x)
  (x * 1103515245 + 12345) % 2147483648
end

def work(seed, n)
  x = seed
  h = {}
  n.times do |i|
    x = lcg(x)
    key = "#{WORDS[x % WORDS.size]}-#{x % 100000}-#{i}"
    h[key] = [i, WORDS[i % WORDS.size] * (1 + i % 5), { "n" => i, "s" => key.reverse }]
  end
  h.delete_if { |_, v| v[0].odd? }
  h.each_value { |v| v[1] = v[1].gsub(/[ae]/) { |c| c.upcase } }
  sorted = h.sort_by { |k, v| [v[1], k] }
  text = sorted.map { |k, v| "#{k} => #{v[1]} #{v[2]['n']}" }.join("\n")
  counts = Hash.new(0)
  text.scan(/\b([A-Za-z]+)-(\d+)-\d+\b/) { |w, _| counts[w] += 1 }
  json = JSON.generate(sorted.first(5000).to_h)
  back = JSON.parse(json)
  nums = text.split("\n").map { |l| l[/(\d+)\z/].to_i }.sort
  s = nums.first(1000).map { |v| v.to_s(16) }.join(",")
  [h.size, Digest::MD5.hexdigest(text), counts.sort.map { |k, v| "#{k}=#{v}" }.join(","),
   Digest::MD5.hexdigest(json), back.size, Digest::MD5.hexdigest(s), text.size].join(" ")
end

puts "main: #{work(1, 50_000)}"
GC.start

queue = Queue.new
results = Queue.new
threads = 4.times.map do
  Thread.new do
    while (seed = queue.pop) != :done
      results << [seed, work(seed, 10_000)]
    end
  end
end
(2..9).each { |seed| queue << seed }
4.times { queue << :done }
threads.each(&:join)
GC.start
got = []
got << results.pop until results.empty?
got.sort.each do |seed, r|
  puts "thread job #{seed}: #{r}"
  puts "job #{seed} differs from the same work on the main thread" if r != work(seed, 10_000)
end
