// Package keytab reads and writes MIT keytab files (MIT krb5
// doc/formats/keytab_file_format.rst, kt_file.c), with raw keys and the 32-bit
// kvno extension. gokrb5's keytab API only derives keys from passwords and
// keeps an 8-bit kvno (notes/gokrb5.md §3(f)); Gokrb5 converts entries for the
// libraries that want gokrb5's type.
package keytab
