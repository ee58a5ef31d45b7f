DROP TABLE quarantined_records;
