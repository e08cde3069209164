// A net/http server answering the five bench workloads: an outside reference.
// Usage: server -port N (GOMAXPROCS sets how many cores it may use).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net/http"
	"strconv"
	"strings"
	"time"
)

func writeJSON(w http.ResponseWriter, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Server", "go")
	h.Set("Content-Type", "application/json")
	w.Write(body)
}

func main() {
	port := flag.Int("port", 8080, "port to listen on (loopback)")
	flag.Parse()
	mux := http.NewServeMux()
	mux.HandleFunc("/json", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]string{"message": "Hello, World!"})
	})
	mux.HandleFunc("/plaintext", func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Server", "go")
		h.Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("Hello, World!"))
	})
	mux.HandleFunc("/users/", func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/users/"))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		var q any
		if values, ok := r.URL.Query()["q"]; ok {
			q = values[0]
		}
		writeJSON(w, map[string]any{"id": id, "q": q})
	})
	mux.HandleFunc("/sync", func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(10 * time.Millisecond)
		writeJSON(w, map[string]float64{"slept": 0.01})
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		writeJSON(w, map[string]float64{"time": float64(time.Now().UnixNano()) / 1e9})
	})
	addr := fmt.Sprintf("127.0.0.1:%d", *port)
	log.Fatal(http.ListenAndServe(addr, mux))
}
