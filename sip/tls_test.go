package sip

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"
)

func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "switchboard test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestTLSListener: a tls:// listener answers a keep-alive OPTIONS over TLS
// from the PBX (its address, and its port in the Via: a TLS client
// connects from another port).
func TestTLSListener(t *testing.T) {
	cert := selfSigned(t)
	p, err := New(Options{
		Listen: []Listen{{Network: "tls", Host: "127.0.0.1", Port: 0}},
		TLS:    &tls.Config{Certificates: []tls.Certificate{cert}},
	}, &Routing{PBX: netip.MustParseAddrPort("127.0.0.1:5080")})
	if err != nil {
		t.Fatal(err)
	}
	serve, err := p.Listeners()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	defer p.Close()
	for _, s := range serve {
		go s(ctx)
	}
	addr := "127.0.0.1:" + strconv.Itoa(p.ports["tls"])
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	me := conn.LocalAddr().String()
	req := "OPTIONS sip:" + addr + ";transport=tls SIP/2.0\r\n" +
		"Via: SIP/2.0/TLS 127.0.0.1:5080;branch=z9hG4bK-tls-1\r\nMax-Forwards: 70\r\n" +
		"From: <sip:ping@" + me + ">;tag=t1\r\nTo: <sip:" + addr + ">\r\nCall-ID: tls-ping\r\n" +
		"CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
	if _, err := conn.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(line, "SIP/2.0 200") {
		t.Fatalf("answer %q, want 200", line)
	}
}
