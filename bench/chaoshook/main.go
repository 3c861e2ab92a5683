// Command chaoshook is the webhook receiver of bench/chaos.sh: it answers
// every missed-call webhook 200 and appends the entry's id to a file, one
// line per delivery, so that the script can count deliveries and find any
// sent twice across the receiver's own restarts (the "webhook down"
// fault stops it).
//
//	chaoshook -listen 127.0.0.1:38299 -out deliveries.txt
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"sync"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:38299", "address to serve on")
	out := flag.String("out", "deliveries.txt", "file the delivered missed-call ids are appended to")
	flag.Parse()
	f, err := os.OpenFile(*out, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		log.Fatal(err)
	}
	var mu sync.Mutex
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		var p struct {
			Missed struct {
				ID string `json:"id"`
			} `json:"missed"`
		}
		if err != nil || json.Unmarshal(b, &p) != nil || p.Missed.ID == "" {
			http.Error(w, "not a missed-call webhook", http.StatusBadRequest)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		// Written before the answer: a delivery the sender saw succeed is
		// always on file.
		if _, err := fmt.Fprintln(f, p.Missed.ID); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	log.Fatal(http.ListenAndServe(*listen, nil))
}
