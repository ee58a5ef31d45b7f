package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"
)

// faults counts, per client, the batch requests seen and the faults
// injected.
type faults struct {
	Requests    int `json:"requests"`
	Injected503 int `json:"injected503"`
	Dropped     int `json:"dropped"`
}

func proxy(args []string) error {
	fs := flag.NewFlagSet("proxy", flag.ExitOnError)
	target := fs.String("target", "", "Boost base URL to forward to (required)")
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on")
	failEvery := fs.Int("fail-every", 0, "answer every Nth batch request of a client with 503 + Retry-After (0 = never)")
	dropEvery := fs.Int("drop-every", 0, "forward every Mth batch request of a client, then close the connection unanswered (0 = never)")
	retryAfter := fs.Int("retry-after", 1, "Retry-After of the injected 503s, in seconds")
	lifetime := fs.Duration("lifetime", 10*time.Minute, "exit after this long whatever happens")
	fs.Parse(args)
	if *target == "" {
		return errors.New("-target is required")
	}
	upstream := strings.TrimRight(*target, "/")

	var mu sync.Mutex
	stats := map[string]*faults{}
	forward := &http.Client{Timeout: 30 * time.Second}

	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/__soak/stats" {
			mu.Lock()
			defer mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(stats)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		action := ""
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/v1/events/batch") {
			client, _, _ := strings.Cut(r.Header.Get("User-Agent"), "/")
			if client == "" {
				client = "unknown"
			}
			mu.Lock()
			f := stats[client]
			if f == nil {
				f = &faults{}
				stats[client] = f
			}
			f.Requests++
			switch k := f.Requests; {
			case *failEvery > 0 && k%*failEvery == 0:
				action = "503"
				f.Injected503++
			case *dropEvery > 0 && k%*dropEvery == 0:
				action = "drop"
				f.Dropped++
			}
			mu.Unlock()
			if action != "" {
				fmt.Printf("proxy: %s request %d of %s\n", action, f.Requests, client)
			}
		}
		if action == "503" {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Retry-After", fmt.Sprint(*retryAfter))
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `{"error":{"code":"unavailable","message":"injected by the soak proxy"}}`)
			return
		}

		out, err := http.NewRequestWithContext(r.Context(), r.Method, upstream+r.URL.RequestURI(), bytes.NewReader(body))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		for k, vs := range r.Header {
			out.Header[k] = vs
		}
		out.Header.Del("Connection")
		resp, err := forward.Do(out)
		if err != nil {
			// The server is down: look like it to the client.
			closeUnanswered(w)
			return
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if action == "drop" {
			// The server has answered (and stored the events); the client
			// will never know.
			closeUnanswered(w)
			return
		}
		for k, vs := range resp.Header {
			w.Header()[k] = vs
		}
		w.WriteHeader(resp.StatusCode)
		w.Write(data)
	})

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	fmt.Printf("proxy listening on http://%s\n", ln.Addr())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		select {
		case <-ctx.Done():
		case <-time.After(*lifetime):
		}
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	mu.Lock()
	defer mu.Unlock()
	b, _ := json.Marshal(stats)
	fmt.Printf("proxy stats %s\n", b)
	return nil
}

func closeUnanswered(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetLinger(0) // a reset, like a process that died
	}
	conn.Close()
}
