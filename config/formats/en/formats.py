"""Date formats of the pages and the admin (FORMAT_MODULE_PATH): times to the second, ISO order.

Django's English default ("Dec. 3, 2026, 2:05 p.m.") hid the seconds of readings and detections that arrive
several a minute, and its order is hard to compare down a column. Times are shown in TIME_ZONE (UTC).
"""

DATETIME_FORMAT = "Y-m-d H:i:s"
SHORT_DATETIME_FORMAT = "Y-m-d H:i:s"
DATE_FORMAT = "Y-m-d"
SHORT_DATE_FORMAT = "Y-m-d"
TIME_FORMAT = "H:i:s"
