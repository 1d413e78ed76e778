package badgerstore

// CopySparse copies a file as troupe verify does, skipping holes. Tests use
// it rather than forking cp: a fork while another test holds a data
// directory's lock keeps that lock alive in the child until it execs.
var CopySparse = copyFile
