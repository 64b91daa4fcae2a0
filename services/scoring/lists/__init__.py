"""Red and black lists (红黑榜) and escalations (约谈, 组织处理, 末位管理) as rules over rankings."""
