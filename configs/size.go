package configs

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml/ast"
)

// ByteSize is a size in bytes, written as a whole number or with a unit
// (KiB, MiB, GiB; KB, MB, GB are read as powers of 1000).
type ByteSize int64

var sizeUnits = []struct {
	suffix string
	factor int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000},
	{"B", 1},
}

// ParseByteSize reads "4KiB", "512MiB", "1000" or "0".
func ParseByteSize(s string) (ByteSize, error) {
	t := strings.TrimSpace(s)
	factor := int64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(t, u.suffix) {
			t, factor = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.factor
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || (factor > 1 && n > (1<<62)/factor) {
		return 0, fmt.Errorf("%q is not a size (use a whole number with a unit: 4KiB, 512MiB, 2GiB)", s)
	}
	return ByteSize(n * factor), nil
}

// decodeNode reads a size written as a number or a string with a unit.
func (b *ByteSize) decodeNode(d *decoder, n ast.Node, path string) {
	var text string
	switch x := n.(type) {
	case *ast.IntegerNode:
		text = x.GetToken().Value
	case *ast.StringNode:
		text = x.Value
	default:
		d.fail(path, n, "expected a size such as 4KiB or 512MiB, got "+kind(n))
		return
	}
	v, err := ParseByteSize(text)
	if err != nil {
		d.fail(path, n, err.Error())
		return
	}
	*b = v
}
