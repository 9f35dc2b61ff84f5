// Package iic is the Montenegrin and Albanian invoice signing scheme
// (IKOF/NSLF, "IIC"): an RSA-SHA256 PKCS#1 v1.5 signature over
// TIN|IssueDateTime|InvOrdNum|BusinUnitCode|TCRCode|SoftCode|TotPrice,
// the issuer identification code IIC as the upper-case hex MD5 of the
// signature bytes, and the tax authority's verification URL.
//
// It only signs and formats; numbering, storage and the online
// registration with the tax service (which returns the FIC/NIVF) are not
// here. Sources: shared/research/fiscal.md §0.2, §4.1, §4.2.
package iic
