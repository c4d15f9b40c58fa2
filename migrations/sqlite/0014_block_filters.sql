-- Search narrows to blocks of lines, not whole files: a large file holds every trigram of
-- a query somewhere without holding the query, and was read whole for it. `grams` holds
-- the file's blocks (about 8 KiB of whole lines each) with a Bloom filter of each one's
-- trigrams (`codebase::trigrams`); each instance keeps the live generation's filters in
-- memory, so a search asks the database for no narrowing at all. The FTS5 index, which
-- only narrowed to files and was half of an index's writing, goes. Rows written before
-- this have no filter: an instance computes theirs from the text when it reads them.
DROP TRIGGER project_contents_indexed;
DROP TRIGGER project_contents_unindexed;
DROP TABLE project_contents_fts;
ALTER TABLE project_contents ADD COLUMN grams BLOB;
