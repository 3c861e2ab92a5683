package storage_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/switchboard-sip/switchboard/storage"
	"github.com/switchboard-sip/switchboard/storage/storagetest"
)

func TestSecretIsStableAcrossOpens(t *testing.T) {
	ctx := context.Background()
	var keys [][]byte
	for i := 0; i < 2; i++ {
		db, err := storage.Open(storagetest.Target(t, "s"))
		if err != nil {
			t.Fatal(err)
		}
		k, err := db.Secret(ctx, "route")
		if err != nil {
			t.Fatal(err)
		}
		other, err := db.Secret(ctx, "other")
		if err != nil {
			t.Fatal(err)
		}
		if len(k) != 32 || bytes.Equal(k, other) {
			t.Fatalf("keys %x and %x", k, other)
		}
		keys = append(keys, k)
		db.Close()
	}
	if !bytes.Equal(keys[0], keys[1]) {
		t.Fatal("the key changed on reopen")
	}
}
