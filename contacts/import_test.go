package contacts_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/switchboard-sip/switchboard/contacts"
)

func usNumbers(t testing.TB) *contacts.Numbers {
	t.Helper()
	n, err := contacts.NewNumbers("US", []string{"1xx"})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func importFile(t *testing.T, s *contacts.Store, numbers *contacts.Numbers, path string) contacts.Summary {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	head := make([]byte, 64)
	n, _ := f.ReadAt(head, 0)
	format := contacts.DetectFormat(path, head[:n])
	var progress []contacts.Progress
	sum, err := contacts.Import(context.Background(), s, numbers, f, format, contacts.ImportOptions{
		BatchSize: 3, // several transactions even for a small file
		Progress:  func(p contacts.Progress) { progress = append(progress, p) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(progress) == 0 || progress[len(progress)-1].Rows != sum.Rows {
		t.Errorf("progress %+v does not end at %d rows", progress, sum.Rows)
	}
	if sum.Created+sum.Merged+sum.Rejected != sum.Rows || len(sum.Rejections) != sum.Rejected {
		t.Errorf("summary does not add up: %+v", sum)
	}
	return sum
}

// rejectionsByLine renders rejections as "line: reason" for comparison.
func rejectionsByLine(rs []contacts.Rejection) map[int]string {
	m := map[int]string{}
	for _, r := range rs {
		m[r.Line] = r.Reason
	}
	return m
}

func TestImportCSV(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	cache := newCache(t, e.store)
	// John called before: his contact exists, made by the call, unnamed.
	john, _ := cache.FindOrCreate(contacts.Phone{E164: "+12125550101"}, "")

	sum := importFile(t, e.store, usNumbers(t), filepath.Join("testdata", "import.csv"))
	if sum.Rows != 11 || sum.Created != 2 || sum.Merged != 3 || sum.Rejected != 6 {
		t.Errorf("summary %+v, want 11 rows: 2 created, 3 merged, 6 rejected", sum)
	}
	wantRejected := map[int]string{
		5:  `phone "437-555-1234567": `,
		6:  `phone "437-555-1234 (Jane's Number)": `,
		7:  "no phone number",
		8:  `phone "1-800-FLOWERS": `,
		9:  "malformed CSV row: ",
		10: "malformed CSV row: 7 fields, the header has 6",
	}
	got := rejectionsByLine(sum.Rejections)
	for line, prefix := range wantRejected {
		if !strings.HasPrefix(got[line], prefix) || len(got[line]) <= len(prefix) && strings.HasSuffix(prefix, ": ") {
			t.Errorf("line %d: reason %q, want %q followed by why", line, got[line], prefix)
		}
	}
	if len(got) != len(wantRejected) {
		t.Errorf("rejected lines %v", got)
	}
	for _, r := range sum.Rejections {
		t.Logf("line %d: %s", r.Line, r.Reason)
	}

	t.Run("duplicates merged", func(t *testing.T) {
		jane, err := e.store.FindByNumber(ctx, "+12125550100")
		if err != nil {
			t.Fatal(err)
		}
		if jane.Name != "Jane Doe" || jane.Company != "ACME" || jane.Email != "jane@acme.example" || jane.Source != contacts.SourceImport {
			t.Errorf("first row's fields must win: %+v", jane)
		}
		if !slices.Equal(jane.Tags, []string{"vip", "b2b", "support", "friends"}) {
			t.Errorf("tags %v, want the union", jane.Tags)
		}
		var nums []string
		for _, p := range jane.Numbers {
			nums = append(nums, p.E164)
		}
		slices.Sort(nums)
		if !slices.Equal(nums, []string{"+12125550100", "+12125550105", "+49301234567"}) {
			t.Errorf("numbers %v", nums)
		}
	})
	t.Run("merged into call-created contact", func(t *testing.T) {
		got, err := e.store.Get(ctx, john.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Name != "John Roe" || got.Email != "john@example.com" || got.Source != contacts.SourceCall {
			t.Errorf("%+v", got)
		}
		if in := cache.Lookup("+12125550101"); in == nil || in.Name != "John Roe" {
			t.Errorf("cache not updated: %+v", in)
		}
	})
	t.Run("extension kept apart", func(t *testing.T) {
		got, err := e.store.FindByNumber(ctx, "+12125550104")
		if err != nil {
			t.Fatal(err)
		}
		if got.Numbers[0].Ext != "23" || got.Numbers[0].Raw != "212-555-0104 x23" {
			t.Errorf("%+v", got.Numbers)
		}
	})
	t.Run("rejected rows stored nothing", func(t *testing.T) {
		for _, n := range []string{"+12125550102", "+12125550103"} {
			if c, err := e.store.FindByNumber(ctx, n); err == nil {
				t.Errorf("%s stored from a rejected row: %+v", n, c)
			}
		}
		items, _, _ := e.store.Search(ctx, "nophone", 10, "")
		if len(items) != 0 {
			t.Errorf("row without number stored: %+v", items)
		}
	})
	t.Run("second import merges everything", func(t *testing.T) {
		again := importFile(t, e.store, usNumbers(t), filepath.Join("testdata", "import.csv"))
		if again.Created != 0 || again.Merged != 5 || again.Rejected != 6 {
			t.Errorf("%+v", again)
		}
	})
}

func TestImportVCard(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		file                      string
		created, merged, rejected int
		rejectedLines             []int
		check                     func(t *testing.T, s *contacts.Store)
	}{
		{"phone_v3.vcf", 2, 0, 2, []int{25, 30}, func(t *testing.T, s *contacts.Store) {
			c, err := s.FindByNumber(ctx, "+14085550142")
			if err != nil {
				t.Fatal(err)
			}
			if c.Name != "Johnny Appleseed" || c.Company != "Apple Inc." || c.Email != "johnny@example.com" ||
				!slices.Equal(c.Tags, []string{"Work", "VIP"}) || len(c.Numbers) != 2 || c.Fields["note"] != "Met at WWDC\nLikes apples" {
				t.Errorf("%+v", c)
			}
			if _, err := s.FindByNumber(ctx, "+14085550143"); err == nil {
				t.Error("fax number imported")
			}
			anna, err := s.FindByNumber(ctx, "+49301234567")
			if err != nil || anna.Name != "Anna Müller" {
				t.Errorf("%+v %v", anna, err)
			}
		}},
		{"phone_v4.vcf", 2, 1, 0, nil, func(t *testing.T, s *contacts.Store) {
			c, err := s.FindByNumber(ctx, "+15555555555")
			if err != nil {
				t.Fatal(err)
			}
			if c.Name != "Dr. Jane Q. Public" || c.Company != "Example Corp, Ltd." || c.Email != "jane.public@example.com" ||
				!slices.Equal(c.Tags, []string{"customer", "gold", "press"}) || len(c.Numbers) != 2 {
				t.Errorf("%+v", c)
			}
			for _, p := range c.Numbers {
				if p.E164 == "+15555555555" && p.Ext != "102" {
					t.Errorf("extension lost: %+v", p)
				}
			}
			john, err := s.FindByNumber(ctx, "+442079460958")
			if err != nil || john.Name != "John Smith" {
				t.Errorf("name from N: %+v %v", john, err)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			e := newEnv(t)
			sum := importFile(t, e.store, usNumbers(t), filepath.Join("testdata", tc.file))
			if sum.Created != tc.created || sum.Merged != tc.merged || sum.Rejected != tc.rejected {
				t.Errorf("summary %+v", sum)
			}
			var lines []int
			for _, r := range sum.Rejections {
				lines = append(lines, r.Line)
				t.Logf("line %d: %s", r.Line, r.Reason)
			}
			if fmt.Sprint(lines) != fmt.Sprint(tc.rejectedLines) && !(len(lines) == 0 && tc.rejectedLines == nil) {
				t.Errorf("rejected lines %v, want %v", lines, tc.rejectedLines)
			}
			tc.check(t, e.store)
		})
	}
}

func TestImportCRMHeaders(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name    string
		data    string
		number  string
		want    contacts.Contact
		numbers int
	}{
		{"outlook", "First Name,Middle Name,Last Name,Company,E-mail Address,E-mail Display Name,Mobile Phone,Business Phone,Business Fax,Categories\n" +
			"Jane,Q.,Doe,ACME,jane@acme.example,Jane Doe (jane@acme.example),(212) 555-0100,212 555 0199,212 555 0198,VIP;Customers\n",
			"+12125550199", contacts.Contact{Name: "Jane Q. Doe", Company: "ACME", Email: "jane@acme.example", Tags: []string{"VIP", "Customers"}}, 2},
		{"google", "Name,Given Name,Family Name,Group Membership,E-mail 1 - Type,E-mail 1 - Value,Phone 1 - Type,Phone 1 - Value,Phone 2 - Type,Phone 2 - Value,Organization 1 - Name\n" +
			"Jane Doe,Jane,Doe,* myContacts ::: Friends,* Work,jane@acme.example,Mobile,+1 212-555-0100 ::: +1 212-555-0101,Work,212-555-0102,ACME\n",
			"+12125550101", contacts.Contact{Name: "Jane Doe", Company: "ACME", Email: "jane@acme.example", Tags: []string{"Friends"}}, 3},
		{"excel semicolons with BOM", "\xef\xbb\xbfName;Organization;Email;Telephone;Tags\nJane Doe;ACME;jane@acme.example;+49 30 1234567;a,b\n",
			"+49301234567", contacts.Contact{Name: "Jane Doe", Company: "ACME", Email: "jane@acme.example", Tags: []string{"a", "b"}}, 1},
		{"full name and home phone", "Full Name,Home Phone,Phone 1 - Value,notes\nJane Doe,2125550100,,likes tea\n",
			"+12125550100", contacts.Contact{Name: "Jane Doe", Tags: []string{}}, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			sum, err := contacts.Import(ctx, e.store, usNumbers(t), strings.NewReader(tc.data), contacts.FormatCSV, contacts.ImportOptions{})
			if err != nil || sum.Created != 1 {
				t.Fatalf("%+v %v", sum, err)
			}
			c, err := e.store.FindByNumber(ctx, tc.number)
			if err != nil {
				t.Fatal(err)
			}
			if c.Name != tc.want.Name || c.Company != tc.want.Company || c.Email != tc.want.Email ||
				!slices.Equal(c.Tags, tc.want.Tags) || len(c.Numbers) != tc.numbers {
				t.Errorf("got %+v", c)
			}
			if tc.name == "full name and home phone" && c.Fields["notes"] != "likes tea" {
				t.Errorf("unknown column not kept in fields: %v", c.Fields)
			}
		})
	}
}

func TestImportFileErrors(t *testing.T) {
	cases := []struct {
		name   string
		format contacts.Format
		data   string
		want   string
	}{
		{"empty csv", contacts.FormatCSV, "", "header row"},
		{"no phone column", contacts.FormatCSV, "name,email\nJane,j@x.example\n", "no phone column"},
		{"not a vcard", contacts.FormatVCard, "hello\n", "no BEGIN:VCARD"},
		{"unknown format", "xls", "", "unknown format"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			_, err := contacts.Import(context.Background(), e.store, usNumbers(t), strings.NewReader(tc.data), tc.format, contacts.ImportOptions{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error about %q", err, tc.want)
			}
		})
	}
}

func TestDetectFormat(t *testing.T) {
	cases := []struct {
		name, head string
		want       contacts.Format
	}{
		{"a.vcf", "", contacts.FormatVCard},
		{"a.CSV", "BEGIN:VCARD", contacts.FormatCSV},
		{"export", "\xef\xbb\xbfBEGIN:VCARD\r\n", contacts.FormatVCard},
		{"-", "name,phone", contacts.FormatCSV},
	}
	for _, tc := range cases {
		if got := contacts.DetectFormat(tc.name, []byte(tc.head)); got != tc.want {
			t.Errorf("DetectFormat(%q, %q) = %s, want %s", tc.name, tc.head, got, tc.want)
		}
	}
}
