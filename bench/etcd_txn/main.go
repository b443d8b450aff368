// Command etcd_txn is bench/compare's load generator for etcd's add-if-absent:
// a transaction that puts a fresh key only if it does not exist yet
// (If(create_revision(key) == 0) Then(put)), the etcd equivalent of adding a
// new member to a set. etcd's own benchmark tool (tools/benchmark) has no such
// command, so this program does it with Debian's clientv3
// (go.etcd.io/etcd/clientv3 in /usr/share/gocode), built in GOPATH mode:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o etcd_txn .
//
// Load model (the same as cset bench): --clients goroutines, each with its own
// gRPC connection (round-robin over --endpoints) and one request in flight.
// Requests completed during the warm-up are neither counted nor timed; the
// measured window is --seconds long, after which no new request is issued.
// Output: one JSON object with the keys cset bench --json uses.
//
// "etcd_txn --leader --endpoints A,B,C" prints the endpoint of the current
// leader instead and exits; "etcd_txn --put-key K" puts K once and exits.
// --op put (a fresh key per request) and --op get (linearizable get of --key)
// are there as a fallback for when etcd's own benchmark tool cannot be built;
// bench/compare says in its table which generator produced each row.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"math/rand"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/clientv3"
	"google.golang.org/grpc/status"
)

type result struct {
	Requests     uint64            `json:"requests"`
	Errors       uint64            `json:"errors"`
	ErrorsByCode map[string]uint64 `json:"errors_by_code"`
	Seconds      float64           `json:"seconds"`
	OpsPerSec    float64           `json:"ops_per_sec"`
	P50Ms        float64           `json:"p50_ms"`
	P90Ms        float64           `json:"p90_ms"`
	P99Ms        float64           `json:"p99_ms"`
	P999Ms       float64           `json:"p999_ms"`
	MaxMs        float64           `json:"max_ms"`
	Clients      int               `json:"clients"`
	Tool         string            `json:"tool"`
}

// worker is one client: its own connection, one request in flight.
type worker struct {
	latencies []float64 // ms, measured requests only
	requests  uint64
	errors    map[string]uint64
}

func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	if i < 0 {
		i = 0
	}
	return sorted[i]
}

func dial(endpoint string, timeout time.Duration) (*clientv3.Client, error) {
	return clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: timeout})
}

func printLeader(endpoints []string, timeout time.Duration) int {
	for _, ep := range endpoints {
		c, err := dial(ep, timeout)
		if err != nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		st, err := c.Status(ctx, ep)
		cancel()
		c.Close()
		if err == nil && st.Leader != 0 && st.Header.MemberId == st.Leader {
			fmt.Println(ep)
			return 0
		}
	}
	fmt.Fprintln(os.Stderr, "etcd_txn: no leader among", strings.Join(endpoints, ","))
	return 3
}

func main() {
	endpointsFlag := flag.String("endpoints", "127.0.0.1:2379", "comma-separated etcd client endpoints")
	clients := flag.Int("clients", 1, "concurrent clients, one gRPC connection each")
	seconds := flag.Float64("seconds", 10, "measured duration after the warm-up, s")
	warmup := flag.Float64("warmup", 1, "warm-up, s (requests completed in it are not counted)")
	prefix := flag.String("key-prefix", "txn/", "key prefix; each key is prefix + 16 random hex digits")
	valSize := flag.Int("val-size", 1, "value size, bytes")
	timeoutMs := flag.Int("timeout-ms", 10000, "dial and per-request timeout, ms")
	leader := flag.Bool("leader", false, "print the leader's endpoint and exit")
	op := flag.String("op", "txn", "txn (put-if-absent of a fresh key), put (fresh key) or get (linearizable, of --key)")
	getKey := flag.String("key", "present", "the key --op get reads")
	putKey := flag.String("put-key", "", "put this key (value --val-size bytes) once and exit")
	flag.Parse()
	endpoints := strings.Split(*endpointsFlag, ",")
	timeout := time.Duration(*timeoutMs) * time.Millisecond
	if *leader {
		os.Exit(printLeader(endpoints, timeout))
	}
	if *putKey != "" {
		c, err := dial(endpoints[0], timeout)
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			_, err = c.Put(ctx, *putKey, strings.Repeat("v", *valSize))
			cancel()
			c.Close()
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "etcd_txn: put:", err)
			os.Exit(3)
		}
		os.Exit(0)
	}
	if *op != "txn" && *op != "put" && *op != "get" {
		fmt.Fprintln(os.Stderr, "etcd_txn: --op txn|put|get")
		os.Exit(2)
	}
	if *clients < 1 || *seconds <= 0 || *warmup < 0 {
		fmt.Fprintln(os.Stderr, "etcd_txn: --clients >= 1, --seconds > 0, --warmup >= 0")
		os.Exit(2)
	}

	conns := make([]*clientv3.Client, *clients)
	for i := range conns {
		c, err := dial(endpoints[i%len(endpoints)], timeout)
		if err != nil {
			fmt.Fprintln(os.Stderr, "etcd_txn: dial:", err)
			os.Exit(3)
		}
		conns[i] = c
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()

	value := strings.Repeat("v", *valSize)
	start := time.Now()
	measureFrom := start.Add(time.Duration(*warmup * float64(time.Second)))
	stopAt := measureFrom.Add(time.Duration(*seconds * float64(time.Second)))
	workers := make([]worker, *clients)
	var wg sync.WaitGroup
	for i := range workers {
		wg.Add(1)
		go func(id int) {
			defer wg.Done()
			w := &workers[id]
			w.errors = map[string]uint64{}
			rng := rand.New(rand.NewSource(time.Now().UnixNano() + int64(id)*7919))
			for {
				sent := time.Now()
				if !sent.Before(stopAt) {
					return
				}
				// 16 fresh bytes: 64 random bits, so no two requests of any
				// run share a key in practice (a repeat would count as EXISTS).
				key := fmt.Sprintf("%s%016x", *prefix, rng.Uint64())
				ctx, cancel := context.WithTimeout(context.Background(), timeout)
				var err error
				succeeded := true
				switch *op {
				case "txn":
					var resp *clientv3.TxnResponse
					resp, err = conns[id].Txn(ctx).
						If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
						Then(clientv3.OpPut(key, value)).Commit()
					succeeded = err == nil && resp.Succeeded
				case "put":
					_, err = conns[id].Put(ctx, key, value)
				case "get": // linearizable: the clientv3 default
					_, err = conns[id].Get(ctx, *getKey)
				}
				cancel()
				done := time.Now()
				if done.Before(measureFrom) || done.After(stopAt) {
					continue
				}
				w.requests++
				if err != nil {
					w.errors[status.Code(err).String()]++
				} else if !succeeded {
					w.errors["EXISTS"]++
				} else {
					w.latencies = append(w.latencies, float64(done.Sub(sent).Nanoseconds())/1e6)
				}
			}
		}(i)
	}
	wg.Wait()

	r := result{ErrorsByCode: map[string]uint64{}, Seconds: *seconds, Clients: *clients,
		Tool: "bench/etcd_txn --op " + *op + " (clientv3)"}
	var all []float64
	for _, w := range workers {
		r.Requests += w.requests
		for code, n := range w.errors {
			r.ErrorsByCode[code] += n
			r.Errors += n
		}
		all = append(all, w.latencies...)
	}
	sort.Float64s(all)
	r.OpsPerSec = float64(r.Requests) / *seconds
	r.P50Ms = percentile(all, 0.50)
	r.P90Ms = percentile(all, 0.90)
	r.P99Ms = percentile(all, 0.99)
	r.P999Ms = percentile(all, 0.999)
	if len(all) > 0 {
		r.MaxMs = all[len(all)-1]
	}
	out, _ := json.Marshal(r)
	fmt.Println(string(out))
	if r.Requests == 0 {
		os.Exit(3)
	}
}
