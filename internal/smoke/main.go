package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/signal"

	gosip "github.com/emiago/sipgo/sip"
	"go.uber.org/zap"

	"github.com/switchboard-sip/switchboard/callctl"
	"github.com/switchboard-sip/switchboard/sip"
)

type sink struct{ log *zap.Logger }

func (s sink) Save(r callctl.Record) { s.log.Info("save", zap.Any("rec", r)) }
func (s sink) ByCallID(context.Context, string) (callctl.Record, error) {
	return callctl.Record{}, errors.New("none")
}

func main() {
	log, _ := zap.NewDevelopment()
	tr := callctl.NewTracker(sink{log})
	var pbx gosip.Uri
	gosip.ParseUri("sip:127.0.0.1:5080", &pbx)
	var out gosip.Uri
	gosip.ParseUri("sip:127.0.0.1:5090", &out)
	r := &sip.Routing{PBX: netip.MustParseAddrPort("127.0.0.1:5080"), PBXURI: pbx, Node: "smoke",
		Trunks: []sip.Trunk{{Name: "carrier", Match: func(a netip.AddrPort) bool { return a.Addr().String() == "127.0.0.1" }, Outbound: &out, Region: "DE"}}}
	p, err := sip.New(sip.Options{Listen: []sip.Listen{{"udp", "127.0.0.1", 5060}, {"tcp", "127.0.0.1", 5060}}, Log: log, Tracker: tr}, r)
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	serve, err := p.Listeners()
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt)
	defer cancel()
	for _, s := range serve {
		go s(ctx)
	}
	<-ctx.Done()
}
