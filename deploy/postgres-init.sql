CREATE DATABASE huanzhi_issues;
CREATE DATABASE huanzhi_scoring;
CREATE DATABASE huanzhi_media;
